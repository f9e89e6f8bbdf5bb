//! The mutator: a small fast PRNG and the mutations, byte-level and structure-aware.
//!
//! Byte-level: bit flips, random bytes, small arithmetic, insert / delete / duplicate /
//! copy ranges, splicing with another seed, interesting integers (1, 2, 4 and 8 bytes,
//! both byte orders), truncation, and huge length prefixes (4-byte frame lengths,
//! protobuf varints, DER long-form lengths, decimal numbers). Structure-aware: the
//! target's dictionary tokens, line operations for text (delete, duplicate, swap, take a
//! line from another seed), decimal numbers rewritten in place, and for client-key
//! files, mutations of the DER inside `PrivateKeyData` re-encoded as base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Shape;

/// xorshift64*: fast, small, and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        // SplitMix64 once, so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Self(if z == 0 { 1 } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        match u64::try_from(n) {
            Ok(0) | Err(_) => 0,
            Ok(n) => usize::try_from(self.next_u64() % n).unwrap_or(0),
        }
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes().first().copied().unwrap_or(0)
    }

    /// True with probability 1 / `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random element of a slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Integers that break parsers: boundaries of every width.
const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    3 << 20,
    8 << 20,
    (8 << 20) + 1,
];

/// Length prefixes that announce far more than the input holds.
const HUGE_PREFIXES: &[&[u8]] = &[
    &[0xff, 0xff, 0xff, 0xff],
    &[0x00, 0x80, 0x00, 0x01],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ],
    &[0x84, 0xff, 0xff, 0xff, 0xff],
    &[0x84, 0x7f, 0xff, 0xff, 0xff],
    &[0x88, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x83, 0x10, 0x00, 0x00],
];

/// Decimal numbers to write over numbers in text.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"-1",
    b"00",
    b"1e9",
    b"255",
    b"256",
    b"65536",
    b"2147483648",
    b"4294967296",
    b"18446744073709551616",
    b"99999999999999999999999999999999",
];

/// Builds mutated inputs from a target's seeds.
#[derive(Debug)]
pub struct Mutator<'a> {
    seeds: &'a [Vec<u8>],
    dictionary: &'a [&'a [u8]],
    shape: Shape,
    max_len: usize,
}

impl<'a> Mutator<'a> {
    /// A mutator over `seeds` (must not be empty for useful output) that never makes an
    /// input longer than `max_len`.
    pub fn new(
        seeds: &'a [Vec<u8>],
        dictionary: &'a [&'a [u8]],
        shape: Shape,
        max_len: usize,
    ) -> Self {
        Self {
            seeds,
            dictionary,
            shape,
            max_len,
        }
    }

    /// Writes a new input into `out`: a seed with a stack of 1 to 16 mutations (one half
    /// of the time, two a quarter, …), structure-aware ones half of the time.
    pub fn mutate(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        out.clear();
        if let Some(seed) = rng.pick(self.seeds) {
            out.extend_from_slice(seed);
        }
        if rng.one_in(2) {
            let done = match self.shape {
                Shape::ClientKeyJson => self.mutate_key_data(rng, out),
                Shape::Lines => self.mutate_pem_block(rng, out),
                Shape::Binary => false,
            };
            if done {
                out.truncate(self.max_len);
                return;
            }
        }
        for _ in 0..stack_depth(rng) {
            self.mutate_once(rng, out);
        }
        out.truncate(self.max_len);
    }

    fn mutate_once(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let text = matches!(self.shape, Shape::Lines | Shape::ClientKeyJson);
        match rng.below(if text { 17 } else { 14 }) {
            0 => flip_bit(rng, data),
            1 => {
                let at = rng.below(data.len());
                let byte = rng.byte();
                if let Some(b) = data.get_mut(at) {
                    *b = byte;
                }
            }
            2 => {
                let at = rng.below(data.len());
                let delta = u8::try_from(rng.below(35) + 1).unwrap_or(1);
                let up = rng.one_in(2);
                if let Some(b) = data.get_mut(at) {
                    *b = if up {
                        b.wrapping_add(delta)
                    } else {
                        b.wrapping_sub(delta)
                    };
                }
            }
            3 => {
                let len = rng.below(16) + 1;
                let bytes: Vec<u8> = if rng.one_in(2) {
                    vec![rng.byte(); len]
                } else {
                    (0..len).map(|_| rng.byte()).collect()
                };
                insert(rng, data, &bytes);
            }
            4 => {
                let (start, end) = range(rng, data.len());
                data.drain(start..end);
            }
            5 => {
                let (start, end) = range(rng, data.len());
                let copy = data.get(start..end).unwrap_or(&[]).to_vec();
                let at = rng.below(data.len() + 1);
                splice_in(data, at, &copy);
            }
            6 => {
                let (start, end) = range(rng, data.len());
                let copy = data.get(start..end).unwrap_or(&[]).to_vec();
                overwrite(rng, data, &copy);
            }
            7 => self.splice(rng, data),
            8 => interesting_integer(rng, data),
            9 => data.truncate(rng.below(data.len() + 1)),
            10 => {
                if let Some(prefix) = rng.pick(HUGE_PREFIXES) {
                    if rng.one_in(2) {
                        insert(rng, data, prefix);
                    } else {
                        overwrite(rng, data, prefix);
                    }
                }
            }
            11 | 12 => {
                if let Some(token) = rng.pick(self.dictionary) {
                    if rng.one_in(2) {
                        insert(rng, data, token);
                    } else {
                        overwrite(rng, data, token);
                    }
                }
            }
            13 => {
                // Repeat a range many times: long inputs of one shape.
                let (start, end) = range(rng, data.len().min(64));
                let copy = data.get(start..end).unwrap_or(&[]).to_vec();
                let times = rng.below(64) + 2;
                let at = rng.below(data.len() + 1);
                let repeated = copy.repeat(times);
                splice_in(data, at, &repeated);
            }
            14 => self.mutate_line(rng, data),
            15 => rewrite_number(rng, data),
            _ => flip_case(rng, data),
        }
    }

    /// Joins a prefix of `data` with a suffix of another seed.
    fn splice(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let Some(other) = rng.pick(self.seeds) else {
            return;
        };
        let cut = rng.below(data.len() + 1);
        let from = rng.below(other.len() + 1);
        data.truncate(cut);
        data.extend_from_slice(other.get(from..).unwrap_or(&[]));
    }

    /// Deletes, duplicates or swaps lines, or takes one from another seed.
    fn mutate_line(&self, rng: &mut Rng, data: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        let at = rng.below(lines.len());
        match rng.below(4) {
            0 => {
                if at < lines.len() {
                    lines.remove(at);
                }
            }
            1 => {
                if let Some(line) = lines.get(at).cloned() {
                    lines.insert(at, line);
                }
            }
            2 => {
                let other = rng.below(lines.len());
                if at < lines.len() && other < lines.len() {
                    lines.swap(at, other);
                }
            }
            _ => {
                let line = rng.pick(self.seeds).and_then(|seed| {
                    let seed_lines: Vec<&[u8]> = seed.split(|b| *b == b'\n').collect();
                    rng.pick(&seed_lines).map(|l| l.to_vec())
                });
                if let Some(line) = line {
                    let at = rng.below(lines.len() + 1);
                    lines.insert(at.min(lines.len()), line);
                }
            }
        }
        *data = lines.join(&b'\n');
    }

    /// Mutates the DER inside a client-key file's `PrivateKeyData`, keeping the JSON and
    /// the base64 valid. False when the input has no such member.
    fn mutate_key_data(&self, rng: &mut Rng, data: &mut Vec<u8>) -> bool {
        let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(data) else {
            return false;
        };
        let Some(member) = json.get_mut("PrivateKeyData") else {
            return false;
        };
        let Some(Ok(mut der)) = member.as_str().map(|text| STANDARD.decode(text.trim())) else {
            return false;
        };
        self.mutate_binary(rng, &mut der);
        *member = serde_json::Value::String(STANDARD.encode(&der));
        *data = json.to_string().into_bytes();
        true
    }

    /// Mutates the DER inside one PEM block (`-----BEGIN …` to `-----END …`), keeping
    /// the armour and the base64 valid. False when the input has no such block.
    fn mutate_pem_block(&self, rng: &mut Rng, data: &mut Vec<u8>) -> bool {
        let begins: Vec<usize> = data
            .windows(11)
            .enumerate()
            .filter(|(_, w)| *w == b"-----BEGIN ")
            .map(|(i, _)| i)
            .collect();
        let Some(&begin) = rng.pick(&begins) else {
            return false;
        };
        let after_begin = data.get(begin..).unwrap_or(&[]);
        let Some(body_start) = after_begin
            .iter()
            .position(|b| *b == b'\n')
            .map(|n| begin + n + 1)
        else {
            return false;
        };
        let Some(body_end) = data
            .get(body_start..)
            .unwrap_or(&[])
            .windows(5)
            .position(|w| w == b"-----")
            .map(|n| body_start + n)
        else {
            return false;
        };
        let text: Vec<u8> = data
            .get(body_start..body_end)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let Ok(mut der) = STANDARD.decode(&text) else {
            return false;
        };
        self.mutate_binary(rng, &mut der);
        let encoded = STANDARD.encode(&der);
        let mut wrapped = Vec::with_capacity(encoded.len() + encoded.len() / 64 + 1);
        for line in encoded.as_bytes().chunks(64) {
            wrapped.extend_from_slice(line);
            wrapped.push(b'\n');
        }
        data.splice(body_start..body_end, wrapped);
        true
    }

    /// A stack of byte-level mutations on binary data held inside a text input.
    fn mutate_binary(&self, rng: &mut Rng, der: &mut Vec<u8>) {
        let binary = Mutator {
            shape: Shape::Binary,
            ..*self
        };
        for _ in 0..stack_depth(rng) {
            binary.mutate_once(rng, der);
        }
    }
}

/// How many mutations to stack: 1 with probability 1/2, 2 with 1/4, … up to 16.
fn stack_depth(rng: &mut Rng) -> usize {
    let zeros = rng.next_u64().trailing_zeros().min(4);
    1usize << zeros
}

fn flip_bit(rng: &mut Rng, data: &mut [u8]) {
    let at = rng.below(data.len());
    let bit = rng.below(8);
    if let Some(b) = data.get_mut(at) {
        *b ^= 1u8 << (bit & 7);
    }
}

fn flip_case(rng: &mut Rng, data: &mut [u8]) {
    let at = rng.below(data.len());
    if let Some(b) = data.get_mut(at)
        && b.is_ascii_alphabetic()
    {
        *b ^= 0x20;
    }
}

/// A random range `start..end` of a slice of `len` bytes, at most 64 long mostly.
fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.below(len + 1);
    let max = if rng.one_in(8) { len } else { 64 };
    let end = start.saturating_add(rng.below(max + 1)).min(len);
    (start, end)
}

fn splice_in(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let at = at.min(data.len());
    data.splice(at..at, bytes.iter().copied());
}

fn insert(rng: &mut Rng, data: &mut Vec<u8>, bytes: &[u8]) {
    let at = rng.below(data.len() + 1);
    splice_in(data, at, bytes);
}

fn overwrite(rng: &mut Rng, data: &mut Vec<u8>, bytes: &[u8]) {
    let at = rng.below(data.len() + 1);
    let end = at.saturating_add(bytes.len()).min(data.len());
    data.splice(at..end, bytes.iter().copied());
}

fn interesting_integer(rng: &mut Rng, data: &mut Vec<u8>) {
    let value = rng.pick(INTERESTING).copied().unwrap_or(0);
    let width = 1usize << rng.below(4);
    let chosen = if rng.one_in(2) {
        let bytes = value.to_be_bytes();
        bytes
            .get(8usize.saturating_sub(width)..)
            .unwrap_or(&[])
            .to_vec()
    } else {
        value.to_le_bytes().get(..width).unwrap_or(&[]).to_vec()
    };
    overwrite(rng, data, &chosen);
}

/// Replaces a run of ASCII digits with another number.
fn rewrite_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let digits: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    let Some(&start) = rng.pick(&digits) else {
        return;
    };
    let end = data
        .iter()
        .skip(start)
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |n| start + n);
    if let Some(number) = rng.pick(NUMBERS) {
        data.splice(start..end, number.iter().copied());
    }
}
