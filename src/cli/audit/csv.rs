//! CSV as RFC 4180 writes it: fields separated by commas, records ended by CRLF, a field quoted when it holds a
//! comma, a double quote or a line break, and a double quote inside a quoted field doubled.
//!
//! RFC 4180 has no NULL. Audit records do (a call without credentials has no principal), and an export must say
//! exactly what the log says, so this follows PostgreSQL's `COPY … CSV`: NULL is an empty, unquoted field; an empty
//! string is `""`. [`read_records`] reads that back, for whoever checks an export.
//!
//! Spreadsheets treat a field starting with `=`, `+`, `-` or `@` as a formula. Fields are exported as recorded,
//! without the usual `'` prefix, since an export that changes the record is no record; open exports as text.

use std::io::{self, Write};

/// Writes one record: `None` is NULL.
pub fn write_record(out: &mut impl Write, fields: &[Option<&str>]) -> io::Result<()> {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if let Some(text) = field {
            out.write_all(quote(text).as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

/// A present field as written: quoted when it must be, or when empty (so it is not read back as NULL).
fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_empty() || text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("record {record}: a double quote inside an unquoted field")]
    StrayQuote { record: usize },
    #[error("record {record}: text after a closing double quote")]
    TextAfterQuote { record: usize },
    #[error("record {record}: a quoted field never ends")]
    UnterminatedQuote { record: usize },
}

/// Every record of `text` (as [`write_record`] writes them; a bare LF also ends a record).
pub fn read_records(text: &str) -> Result<Vec<Vec<Option<String>>>, CsvError> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let record_no = records.len() + 1;
        let mut record = Vec::new();
        loop {
            // One field.
            let field = if chars.peek() == Some(&'"') {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(CsvError::UnterminatedQuote { record: record_no }),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            value.push('"');
                        }
                        Some('"') => break,
                        Some(c) => value.push(c),
                    }
                }
                if !matches!(chars.peek(), None | Some(',' | '\r' | '\n')) {
                    return Err(CsvError::TextAfterQuote { record: record_no });
                }
                Some(value)
            } else {
                let mut value = String::new();
                while let Some(&c) = chars.peek() {
                    match c {
                        ',' | '\r' | '\n' => break,
                        '"' => return Err(CsvError::StrayQuote { record: record_no }),
                        _ => {
                            value.push(c);
                            chars.next();
                        }
                    }
                }
                (!value.is_empty()).then_some(value)
            };
            record.push(field);
            match chars.next() {
                Some(',') => continue,
                Some('\r') => {
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    break;
                }
                Some('\n') | None => break,
                Some(_) => unreachable!("a field ends only at a comma, a line break or the end"),
            }
        }
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(fields: &[Option<&str>]) -> String {
        let mut out = Vec::new();
        write_record(&mut out, fields).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_fields_are_left_alone() {
        assert_eq!(written(&[Some("a"), Some("b c"), Some("1.5")]), "a,b c,1.5\r\n");
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted() {
        assert_eq!(written(&[Some("a,b")]), "\"a,b\"\r\n");
        assert_eq!(written(&[Some(r#"say "hi""#)]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(written(&[Some("two\nlines")]), "\"two\nlines\"\r\n");
        assert_eq!(written(&[Some("cr\rhere")]), "\"cr\rhere\"\r\n");
    }

    #[test]
    fn null_is_empty_and_empty_is_quoted() {
        assert_eq!(written(&[None, Some(""), None]), ",\"\",\r\n");
    }

    #[test]
    fn what_is_written_reads_back() {
        let records: Vec<Vec<Option<&str>>> = vec![
            vec![Some("id"), Some("reason"), Some("request")],
            vec![Some("1"), None, Some(r#"{"a": "x,y", "b": "say \"hi\""}"#)],
            vec![Some("2"), Some(""), Some("multi\r\nline\nfield")],
            vec![None, None, None],
            vec![Some(" spaced "), Some("é ✓"), Some("=1+2")],
        ];
        let mut out = Vec::new();
        for record in &records {
            write_record(&mut out, record).unwrap();
        }
        let read = read_records(&String::from_utf8(out).unwrap()).unwrap();
        let expected: Vec<Vec<Option<String>>> =
            records.iter().map(|r| r.iter().map(|f| f.map(str::to_owned)).collect()).collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn malformed_text_is_refused() {
        assert_eq!(read_records("a\"b\r\n"), Err(CsvError::StrayQuote { record: 1 }));
        assert_eq!(read_records("ok\r\n\"a\"b\r\n"), Err(CsvError::TextAfterQuote { record: 2 }));
        assert_eq!(read_records("\"never"), Err(CsvError::UnterminatedQuote { record: 1 }));
    }

    #[test]
    fn a_missing_final_line_break_is_fine() {
        assert_eq!(read_records("a,b").unwrap(), vec![vec![Some("a".to_owned()), Some("b".to_owned())]]);
        assert_eq!(read_records("").unwrap(), Vec::<Vec<Option<String>>>::new());
    }
}
