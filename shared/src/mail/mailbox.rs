//! The mailboxes of an address-list header (`From`, `To`, `Cc`, `Reply-To`): each address with its display
//! name, as the provider formats list them.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

use super::envelope::is_address;

/// One mailbox of an address list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// The display name, decoded; `""` when there is none.
    pub name: String,
    /// The address (`local@domain`); `""` for a name without an address.
    pub address: String,
}

/// The mailboxes of an address-list header value (`"Name" <a@b>, c@d, Group: e@f;`), in order; members
/// of a group are listed in its place. A value that holds no address yields nothing.
pub fn mailboxes_in(value: &str) -> Vec<Mailbox> {
    // The address parser finishes its last address at the end of a line.
    let line = format!("{value}\n");
    match MessageStream::new(line.as_bytes()).parse_address() {
        HeaderValue::Address(list) => list
            .iter()
            .map(|addr| Mailbox {
                name: addr.name().unwrap_or_default().trim().to_owned(),
                address: cleaned(addr.address().unwrap_or_default()),
            })
            .filter(|mailbox| !mailbox.address.is_empty() || !mailbox.name.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// The address of a malformed or obsolete mailbox as receivers read it: a stray bracket (`a@b>`) and a
/// source route (`@relay:a@b`) dropped, the spaces of an obsolete `a @ b . example` closed up, and of
/// words around an address (`Big Bug bb@bug.com`) the first that is one.
fn cleaned(address: &str) -> String {
    let address = address.trim().trim_matches(['<', '>', ';']);
    let address = match address.rsplit_once(':') {
        Some((route, rest)) if route.starts_with('@') => rest,
        _ => address,
    };
    if !address.contains(char::is_whitespace) {
        return address.to_owned();
    }
    let closed: String = address.split_whitespace().collect();
    let obsolete_spacing = address
        .split_whitespace()
        .zip(address.split_whitespace().skip(1))
        .all(|(a, b)| a.ends_with(['.', '@']) || b.starts_with(['.', '@']));
    if obsolete_spacing && is_address(&closed) {
        return closed;
    }
    address
        .split_whitespace()
        .find(|word| is_address(word))
        .unwrap_or(address)
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(value: &str) -> Vec<(String, String)> {
        mailboxes_in(value)
            .into_iter()
            .map(|m| (m.name, m.address))
            .collect()
    }

    #[test]
    fn names_addresses_and_groups() {
        assert_eq!(
            pairs("\"Lima, Ana\" <ana@x.example>, bob@y.example, Team: c@z.example, d@z.example;"),
            [
                ("Lima, Ana".to_owned(), "ana@x.example".to_owned()),
                (String::new(), "bob@y.example".to_owned()),
                (String::new(), "c@z.example".to_owned()),
                (String::new(), "d@z.example".to_owned()),
            ]
        );
        assert_eq!(
            pairs("Ana Gonçalves <ana@x.example>"),
            [("Ana Gonçalves".to_owned(), "ana@x.example".to_owned())]
        );
        assert_eq!(
            pairs("\"First Cc\" <cc@x.example>, second@x.example>"),
            [
                ("First Cc".to_owned(), "cc@x.example".to_owned()),
                (String::new(), "second@x.example".to_owned()),
            ]
        );
        assert_eq!(
            pairs(
                "John Doe <jdoe@machine.  example>, Mary <@relay.tld:mary@example.net>, Big Bug bb@bug.com"
            ),
            [
                ("John Doe".to_owned(), "jdoe@machine.example".to_owned()),
                ("Mary".to_owned(), "mary@example.net".to_owned()),
                (String::new(), "bb@bug.com".to_owned()),
            ]
        );
        assert!(mailboxes_in("").is_empty());
        assert!(mailboxes_in("undisclosed-recipients:;").is_empty());
    }
}
