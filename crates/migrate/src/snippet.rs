//! nginx configuration text (the snippets of the ConfigMap and of the
//! annotations) read the way nginx's `ngx_conf_read_token` reads it, so
//! that a directive is recognised however it is spelled: a name in single
//! or double quotes (`"deny" all;`), `\` escapes (`\"`, `\'`, `\\` give the
//! character, `\t`, `\r`, `\n` a control character, any other keeps the
//! backslash, as nginx copies a word), `#` starting a comment
//! only where a token starts (inside quotes or a word it is text), `;`
//! and `{` ending a word but not inside quotes, and nested `{}` blocks.
//!
//! Invariant: text nginx would reject (an unterminated quote or block, a
//! `}` without its `{`, a quote followed by text) yields `None`, and every
//! caller then takes the snippet as unsafe: never a partial reading.

/// One directive: its unquoted name and arguments, and the names of the
/// blocks it sits in (outermost first; empty at the snippet's top level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The name, unquoted and unescaped.
    pub name: String,
    /// The arguments, unquoted and unescaped.
    pub args: Vec<String>,
    /// The enclosing blocks' names, outermost first.
    pub within: Vec<String>,
}

/// The directives of `text` (a block's own directive is listed before
/// what it holds), or `None` when nginx would not parse it.
pub fn directives(text: &str) -> Option<Vec<Directive>> {
    let mut out = Vec::new();
    let mut within: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '#' => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            ';' | '{' => {
                let mut ws = std::mem::take(&mut words).into_iter();
                let name = ws.next()?; // `;` or `{` with no directive: nginx's "unexpected"
                let d = Directive { name, args: ws.collect(), within: within.clone() };
                if c == '{' {
                    within.push(d.name.clone());
                }
                out.push(d);
            }
            '}' => {
                if !words.is_empty() {
                    return None; // "unexpected }": a directive not ended by `;`
                }
                within.pop()?;
            }
            '"' | '\'' => {
                let mut w = String::new();
                loop {
                    match chars.next()? {
                        '\\' => unescape(&mut w, chars.next()?),
                        q if q == c => break,
                        ch => w.push(ch),
                    }
                }
                // After a closing quote nginx wants a space, `;`, `{` or `)`.
                if chars.peek().is_some_and(|n| !matches!(n, ' ' | '\t' | '\r' | '\n' | ';' | '{' | ')')) {
                    return None;
                }
                words.push(w);
            }
            _ => {
                let mut w = String::new();
                let mut ch = c;
                loop {
                    if ch == '\\' {
                        unescape(&mut w, chars.next()?);
                    } else {
                        w.push(ch);
                    }
                    // `{` right after `$` opens a variable name (`${name}`), not a block.
                    let dollar = ch == '$';
                    match chars.next_if(|n| !matches!(n, ' ' | '\t' | '\r' | '\n' | ';') && (*n != '{' || dollar)) {
                        Some(n) => ch = n,
                        None => break,
                    }
                }
                words.push(w);
            }
        }
    }
    (words.is_empty() && within.is_empty()).then_some(out)
}

/// What nginx copies into a word for `\` followed by `c`.
fn unescape(w: &mut String, c: char) {
    match c {
        '"' | '\'' | '\\' => w.push(c),
        't' => w.push('\t'),
        'r' => w.push('\r'),
        'n' => w.push('\n'),
        _ => {
            w.push('\\');
            w.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Option<Vec<(String, Vec<String>)>> {
        directives(text).map(|ds| ds.into_iter().map(|d| (d.name, d.within)).collect())
    }

    fn n(name: &str, within: &[&str]) -> (String, Vec<String>) {
        (name.to_owned(), within.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn quoted_names_and_arguments() {
        let d = directives(r#""deny" all; 'set_real_ip_from' 192.0.2.0/24;"#).unwrap();
        assert_eq!(d[0].name, "deny");
        assert_eq!(d[0].args, ["all"]);
        assert_eq!(d[1].name, "set_real_ip_from");
        assert_eq!(d[1].args, ["192.0.2.0/24"]);
    }

    #[test]
    fn hash_inside_quotes_and_words_is_text() {
        let d = names("add_header X-A \"#\"; set_real_ip_from 192.0.2.0/24;").unwrap();
        assert_eq!(d, [n("add_header", &[]), n("set_real_ip_from", &[])]);
        let d = directives("add_header X-A a#b; # deny all;\nallow 10.0.0.0/8;").unwrap();
        assert_eq!(d[0].args, ["X-A", "a#b"]);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].name, "allow");
    }

    #[test]
    fn escapes_and_semicolons_inside_quotes() {
        let d = directives(r#"add_header X "a;b \"deny\" {"; \deny all; d\eny all; de\ny all; a\;b c;"#).unwrap();
        assert_eq!(d[0].args, ["X", "a;b \"deny\" {"]);
        // nginx keeps a backslash before an ordinary character and reads
        // `\n` as a newline: none of these is `deny`.
        assert_eq!(d[1].name, "\\deny");
        assert_eq!(d[2].name, "d\\eny");
        assert_eq!(d[3].name, "de\ny");
        // An escaped `;` does not end the word.
        assert_eq!(d[4].name, "a\\;b");
        assert_eq!(d.len(), 5);
        assert_eq!(directives(r"\'deny\' all;").unwrap()[0].name, "'deny'");
        let d = directives("add_header X ${host}a; deny all;").unwrap();
        assert_eq!(d[0].args, ["X", "${host}a"]);
        assert_eq!(d[1].name, "deny");
    }

    #[test]
    fn nested_blocks() {
        let d = names("map $a $b { default 1; }\nserver { location / { deny all; } }\ngzip on;").unwrap();
        assert_eq!(
            d,
            [
                n("map", &[]),
                n("default", &["map"]),
                n("server", &[]),
                n("location", &["server"]),
                n("deny", &["server", "location"]),
                n("gzip", &[]),
            ]
        );
    }

    #[test]
    fn what_nginx_rejects_is_none() {
        for bad in ["deny all", "\"deny all;", "server { deny all;", "}", "deny all; }", "\"deny\"x all;", "{ }", ";"] {
            assert_eq!(directives(bad), None, "{bad:?}");
        }
        assert_eq!(directives(""), Some(vec![]));
        assert_eq!(directives("# only a comment \"\n"), Some(vec![]));
    }
}
