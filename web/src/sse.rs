//! Splits a `text/event-stream` byte stream into events' `data` (the WHATWG rules the panel
//! needs: `\n\n` ends an event, `data:` lines join with `\n`, comments and other fields are
//! skipped). Chunks may split anywhere, even inside a UTF-8 character.

#[derive(Default, Debug)]
pub struct Buffer {
    pending: Vec<u8>,
}

impl Buffer {
    /// Adds a chunk; returns the data of every event it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend(chunk.iter().copied().filter(|&b| b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = self.pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&raw[..end]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(vec![&b"data: {\"a\":1}\n\n"[..]], vec!["{\"a\":1}"])]
    #[case(vec![&b"data: x"[..], &b"y\n"[..], &b"\ndata: z\n\n"[..]], vec!["xy", "z"])]
    #[case(vec![&b": keep-alive\n\n"[..], &b"event: threat\r\nid: 4\r\ndata: 1\r\ndata: 2\r\n\r\n"[..]], vec!["1\n2"])]
    #[case(vec![&b"data: caf\xc3"[..], &b"\xa9\n\n"[..]], vec!["caf\u{e9}"])]
    #[case(vec![&b"data: unfinished\n"[..]], vec![])]
    fn chunks_become_events(#[case] chunks: Vec<&[u8]>, #[case] expected: Vec<&str>) {
        let mut buffer = Buffer::default();
        let got: Vec<String> = chunks.iter().flat_map(|c| buffer.push(c)).collect();
        assert_eq!(got, expected);
    }
}
