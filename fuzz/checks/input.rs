//! A cursor that turns fuzz bytes into small structured choices; running out yields zeros.

/// Reads choices off the front of the fuzz input.
pub(super) struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps the raw fuzz input.
    pub(super) fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// True when every byte has been consumed.
    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0 when the input is used up.
    pub(super) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (n > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    /// One of `items` (non-empty).
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A length-prefixed run of bytes (at most 255).
    pub(super) fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte()).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// A length-prefixed string; invalid UTF-8 is replaced, so every input yields one.
    pub(super) fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// Whatever is left.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
