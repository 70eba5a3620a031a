//! The last bytes of CMD's output, in a fixed amount of memory, however much it writes.

use std::collections::VecDeque;

/// The last `cap` bytes of everything pushed, and how much that was.
#[derive(Debug)]
pub struct Tail {
    kept: VecDeque<u8>,
    cap: usize,
    total: u64,
}

/// What a [`Tail`] kept: the last bytes, and how many bytes there were in all, so that a reader
/// knows whether the beginning was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub bytes: Vec<u8>,
    pub total: u64,
}

impl Kept {
    /// Whether output was cut: more was written than kept.
    pub fn cut(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

impl Tail {
    pub fn new(cap: usize) -> Tail {
        Tail {
            kept: VecDeque::with_capacity(cap),
            cap,
            total: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if data.len() >= self.cap {
            self.kept.clear();
            self.kept.extend(&data[data.len() - self.cap..]);
            return;
        }
        let over = (self.kept.len() + data.len()).saturating_sub(self.cap);
        self.kept.drain(..over);
        self.kept.extend(data);
    }

    /// What was kept. A tail that was cut starts at a character, not inside one, when the
    /// output is UTF-8: a cut through a character would make the whole tail look binary.
    pub fn kept(&self) -> Kept {
        let mut bytes: Vec<u8> = self.kept.iter().copied().collect();
        if self.total > bytes.len() as u64 {
            let inside = bytes
                .iter()
                .take(3)
                .take_while(|b| (**b & 0xC0) == 0x80)
                .count();
            if std::str::from_utf8(&bytes[inside..]).is_ok() {
                bytes.drain(..inside);
            }
        }
        Kept {
            bytes,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_bytes_and_counts_them_all() {
        let mut tail = Tail::new(5);
        tail.push(b"ab");
        assert_eq!(tail.kept().bytes, b"ab");
        assert!(!tail.kept().cut());
        tail.push(b"cdef");
        assert_eq!(tail.kept().bytes, b"bcdef");
        tail.push(b"0123456789");
        let kept = tail.kept();
        assert_eq!((kept.bytes.as_slice(), kept.total), (&b"56789"[..], 16));
        assert!(kept.cut());
        let mut none = Tail::new(0);
        none.push(b"xyz");
        assert_eq!(
            none.kept(),
            Kept {
                bytes: vec![],
                total: 3
            }
        );
    }

    #[test]
    fn a_cut_tail_starts_at_a_character() {
        let mut tail = Tail::new(4);
        tail.push("aé€".as_bytes());
        // "€" is three bytes; the cut went through "é".
        assert_eq!(std::str::from_utf8(&tail.kept().bytes), Ok("€"));
        // Binary output is kept byte for byte.
        let mut tail = Tail::new(4);
        tail.push(b"\x00\x80\x80\xff\x01");
        assert_eq!(tail.kept().bytes, b"\x80\x80\xff\x01");
    }
}
