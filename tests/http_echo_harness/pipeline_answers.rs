//! Reads the HTTP echo example's answers as they arrive and holds each to what the model
//! (`pipeline_model.rs`) says it is due: status, the answer's fields one by one,
//! `Content-Length`, `Connection`, `Content-Type`, body bytes, order, where it ends.

use crate::pipeline_model::{shown, Due};

/// Reads answers as they arrive and checks each against what is due.
pub struct Checker {
    dues: Vec<Due>,
    /// The next due answer.
    next: usize,
    /// Received bytes not yet taken by a whole answer.
    buf: Vec<u8>,
    /// Whether a `100 Continue` came for the next due answer.
    continued: bool,
}

impl Checker {
    pub fn new(dues: Vec<Due>) -> Checker {
        Checker {
            dues,
            next: 0,
            buf: Vec::new(),
            continued: false,
        }
    }

    /// One more answer due after those already due.
    pub fn expect(&mut self, due: Due) {
        self.dues.push(due);
    }

    /// Whether a `100 Continue` came for the next due answer.
    pub fn continued(&self) -> bool {
        self.continued
    }

    /// Every due answer came.
    pub fn done(&self) -> bool {
        self.next == self.dues.len()
    }

    /// Whether the last due answer ends the connection.
    pub fn ends_closed(&self) -> bool {
        self.dues.last().is_some_and(Due::closes)
    }

    /// Takes `bytes` received, checking each answer they complete. Bytes after the last due
    /// answer are an error.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        loop {
            if self.buf.is_empty() {
                return Ok(());
            }
            let Some(due) = self.dues.get(self.next) else {
                return Err(format!(
                    "more after the last due answer: {}",
                    shown(&self.buf)
                ));
            };
            let head_only = match due {
                Due::Echo { head_only, .. } | Due::Refused { head_only, .. } => *head_only,
            };
            let Some((answer, used)) = parse_answer(&self.buf, head_only)? else {
                return Ok(());
            };
            let n = self.next;
            let wrong = |what: String| format!("answer {n}: {what}, due {due:?}, got {answer:?}");
            if answer.status == 100 {
                let may = matches!(
                    due,
                    Due::Echo {
                        may_continue: true,
                        ..
                    }
                );
                if !may || self.continued || !answer.fields.is_empty() {
                    return Err(wrong("a 100 Continue not due".into()));
                }
                self.continued = true;
            } else {
                check_answer(&answer, due).map_err(wrong)?;
                self.next += 1;
                self.continued = false;
            }
            self.buf.drain(..used);
        }
    }

    /// The server closed: every due answer must have come, whole.
    pub fn eof(&self) -> Result<(), String> {
        if !self.done() || !self.buf.is_empty() {
            return Err(format!(
                "closed after {} of {} answers, with {} left over",
                self.next,
                self.dues.len(),
                shown(&self.buf)
            ));
        }
        Ok(())
    }
}

/// One answer as received.
pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub fields: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.reason)?;
        for (name, value) in &self.fields {
            write!(f, ", {name}: {}", shown(value))?;
        }
        write!(f, ", body {}", shown(&self.body))
    }
}

impl Answer {
    fn value(&self, name: &str) -> Option<&[u8]> {
        let f = self.fields.iter().find(|(n, _)| n == name);
        f.map(|(_, v)| &v[..])
    }
}

/// The answer at the start of `buf` and the bytes it took, `None` if it is not all there.
fn parse_answer(buf: &[u8], head_only: bool) -> Result<Option<(Answer, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(len)) if r.version == Some(1) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        res => return Err(format!("not an HTTP/1.1 answer ({res:?}): {}", shown(buf))),
    };
    let status = r.code.unwrap();
    let fields: Vec<(String, Vec<u8>)> = r
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let length = fields.iter().find(|(n, _)| n == "Content-Length");
    let length: usize = match (status, length) {
        (100, None) => 0,
        (100, Some(_)) => return Err("a 100 with a Content-Length".into()),
        (_, Some((_, v))) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or("bad Content-Length")?,
        (_, None) => return Err(format!("a {status} without Content-Length")),
    };
    let body_len = if head_only { 0 } else { length };
    let Some(body) = buf.get(len..len + body_len) else {
        return Ok(None);
    };
    let answer = Answer {
        status,
        reason: r.reason.unwrap_or("").to_string(),
        fields,
        body: body.to_vec(),
    };
    Ok(Some((answer, len + body_len)))
}

/// Whether `answer` is what `due` says, field by field.
fn check_answer(answer: &Answer, due: &Due) -> Result<(), String> {
    let names: Vec<&str> = answer.fields.iter().map(|(n, _)| n.as_str()).collect();
    let date = answer.value("Date").ok_or("no Date")?;
    // An IMF-fixdate: `Sat, 05 Dec 2026 08:11:57 GMT`.
    if date.len() != 29 || !date.ends_with(b" GMT") {
        return Err(format!("Date {}", shown(date)));
    }
    let length: usize = std::str::from_utf8(answer.value("Content-Length").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    match due {
        Due::Echo {
            length: due_length,
            body,
            content_type,
            connection,
            ..
        } => {
            let due_names: &[&str] = match connection {
                Some(_) => &["Date", "Content-Length", "Connection", "Content-Type"],
                None => &["Date", "Content-Length", "Content-Type"],
            };
            if (answer.status, answer.reason.as_str()) != (200, "OK") || names != due_names {
                return Err("status or fields".into());
            }
            if length != *due_length || answer.body != *body {
                return Err(format!("length {length} or body"));
            }
            if answer.value("Connection") != connection.map(str::as_bytes) {
                return Err("Connection".into());
            }
            if answer.value("Content-Type") != Some(&content_type[..]) {
                return Err("Content-Type".into());
            }
        }
        Due::Refused { status, head_only } => {
            let due_names = ["Date", "Content-Length", "Connection", "Content-Type"];
            if answer.status != *status || names != due_names {
                return Err("status or fields".into());
            }
            let (connection, ty) = (answer.value("Connection"), answer.value("Content-Type"));
            if connection != Some(b"close") || ty != Some(b"text/plain; charset=utf-8") {
                return Err("Connection or Content-Type".into());
            }
            // One line saying what was wrong; a HEAD gets only its length.
            let line = answer.body.strip_suffix(b"\n").unwrap_or(b"\n");
            let one_line = *head_only
                || (!line.is_empty() && !line.contains(&b'\n') && length == answer.body.len());
            if !one_line || length == 0 {
                return Err("its reason".into());
            }
        }
    }
    Ok(())
}
