// Mailroom's JSON payload as a TypeScript type: CloudMailin's IncomingMail with Mailroom's documented
// departures (docs/formats.md). Anything else we emit must match IncomingMail exactly.
import type { IncomingMail } from "cloudmailin";

/** SES's verdict words, as in its receipt notifications. */
export type SesVerdict = "PASS" | "FAIL" | "GRAY" | "PROCESSING_FAILED" | "DISABLED";

export type MailroomMail = Omit<IncomingMail, "envelope"> & {
  envelope: Omit<IncomingMail["envelope"], "tls"> & {
    /** Omitted when unknown: SES does not record TLS (the one departure from IncomingMail). */
    tls?: boolean;
    /** In CloudMailin's documented format, missing from its npm type. */
    remote_ip: string;
    /** SES's verdicts on received mail. */
    ses?: { spam?: SesVerdict; virus?: SesVerdict; spf?: SesVerdict; dkim?: SesVerdict; dmarc?: SesVerdict };
    /** The +tag of the recipient's local part. */
    mailbox_hash?: string;
  };
  /** Limits hit and damage found while parsing. */
  warnings: Array<{ code: string; message: string }>;
};
