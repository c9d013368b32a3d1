fn main() { let h = std::io::read_to_string(std::io::stdin()).unwrap(); print!("{}", html2text::from_read(h.as_bytes(), 80).unwrap()); }
