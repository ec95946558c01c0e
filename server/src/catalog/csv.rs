//! A small CSV reader (RFC 4180): fields separated by commas, a field in double quotes may
//! hold commas, line breaks and doubled quotes (`""`); lines end in LF or CRLF; a UTF-8 byte
//! order mark at the start is skipped, and so are blank lines. Enough for product exports;
//! no dependency.

/// One record: the line it starts on (1-based) and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line of the file where the record starts.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// Splits `text` into records; an error names the line of a malformed quote.
pub fn records(text: &str) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        // Whether the current field was quoted, and whether anything was read on this record.
        let mut quoted = false;
        let mut any = false;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(',') => {
                    any = true;
                    fields.push(std::mem::take(&mut field));
                    quoted = false;
                }
                Some('"') if field.is_empty() && !quoted => {
                    any = true;
                    quoted = true;
                    let opened = line;
                    loop {
                        match chars.next() {
                            None => return Err(format!("line {opened}: a quoted field is not closed")),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some(',' | '\n' | '\r') => {}
                        Some(_) => {
                            return Err(format!(
                            "line {line}: text after a closing quote (a quote inside a quoted field is written \"\")"
                        ))
                        }
                    }
                }
                Some('"') => {
                    return Err(format!(
                        "line {line}: a quote inside an unquoted field (quote the whole field and double the quote)"
                    ))
                }
                Some(c) => {
                    any = true;
                    field.push(c);
                }
            }
        }
        if any || fields.iter().any(|f| !f.is_empty()) {
            out.push(Record { line: start, fields });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        records(text).unwrap().into_iter().map(|r| r.fields).collect()
    }

    #[test]
    fn quotes_commas_and_line_breaks() {
        let text = "\u{feff}id,name\r\n1,\"Big, \"\"smart\"\" TV\"\r\n\n2,\"two\nlines\"\n3,\n";
        assert_eq!(
            fields(text),
            vec![
                vec!["id".to_string(), "name".into()],
                vec!["1".into(), "Big, \"smart\" TV".into()],
                vec!["2".into(), "two\nlines".into()],
                vec!["3".into(), String::new()],
            ]
        );
        let lines: Vec<usize> = records(text).unwrap().iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 4, 6]);
        assert_eq!(fields("a,b"), vec![vec!["a".to_string(), "b".into()]]);
        assert_eq!(fields("\"\",x\n"), vec![vec![String::new(), "x".into()]]);
    }

    #[test]
    fn malformed_quotes_name_the_line() {
        assert!(records("a\n\"open").unwrap_err().starts_with("line 2: a quoted field is not closed"));
        assert!(records("a\nb\"c\n").unwrap_err().starts_with("line 2: a quote inside"));
        assert!(records("\"a\"b\n").unwrap_err().starts_with("line 1: text after a closing quote"));
    }
}
