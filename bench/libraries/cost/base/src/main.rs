fn main() { let h = std::io::read_to_string(std::io::stdin()).unwrap(); print!("{}", mailroom::mail::html::html_to_text(&h)); }
