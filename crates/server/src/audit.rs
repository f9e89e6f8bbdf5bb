//! The audit log (`docs/audit.md`): every management action and every instance-API call,
//! appended as one JSON line — time, request id, caller, source address, action,
//! resource, result code — and hash-chained, so that a removed, reordered or altered line
//! is found by [`verify`] (`strongroom audit verify FILE`).
//!
//! Each line carries `seq` (1, 2, …), `prev` (the previous line's `hash`; 64 zeros for the
//! first) and `hash` = SHA-256 of `prev` followed by the line's JSON without `hash`
//! (keys in the order written). A line holds identifiers and codes only: never a
//! plaintext, key material, password or signature.
//!
//! Lines are written by one thread fed through a channel, so a request never waits for
//! the disk; the file is flushed after each batch. Each node writes its own file. On
//! start, a line cut short by a crash (no final newline) is removed, and the chain goes
//! on from the last whole line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use strongroom_crypto::hash::sha256;

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited request, as the handlers describe it.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// The request id the caller was given.
    pub request_id: String,
    /// Who: an AccessKey id (management) or a client key id (instance API); empty when
    /// the request was refused before the caller was known.
    pub caller: String,
    /// The caller's address.
    pub source: String,
    /// The action or API name.
    pub action: String,
    /// What it was about (a key id, an instance id, a name), when known.
    pub resource: String,
    /// `OK`, or the error code answered.
    pub result: String,
}

/// A line as written (and read back by [`verify`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Line {
    seq: u64,
    time: String,
    request_id: String,
    caller: String,
    source: String,
    action: String,
    resource: String,
    result: String,
    prev: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
}

impl Line {
    /// `hash` of this line (its JSON without `hash`, after `prev`).
    fn digest(&self) -> Result<String, String> {
        let mut bare = self.clone();
        bare.hash = None;
        let json = serde_json::to_string(&bare).map_err(|e| e.to_string())?;
        let mut input = bare.prev.clone().into_bytes();
        input.extend_from_slice(json.as_bytes());
        Ok(hex(&sha256(&input)))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The audit log's writer. Dropping it writes what is queued before returning.
#[derive(Debug)]
pub struct AuditLog {
    sender: Option<mpsc::Sender<Event>>,
    writer: Option<std::thread::JoinHandle<()>>,
    file: PathBuf,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the channel ends the writer once the queue is written.
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("audit log {}: {reason}", file.display())]
pub struct AuditError {
    /// The file.
    pub file: PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl AuditLog {
    /// Opens (or creates, mode 0600) `file` and starts the writer thread.
    ///
    /// # Errors
    /// [`AuditError`] if the file cannot be opened or its last line cannot be read.
    pub fn open(file: &Path) -> Result<Self, AuditError> {
        let err = |reason: String| AuditError {
            file: file.to_owned(),
            reason,
        };
        let (seq, prev) = recover(file).map_err(err)?;
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let handle = options.open(file).map_err(|e| err(e.to_string()))?;
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_loop(handle, receiver, seq, prev))
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            sender: Some(sender),
            writer: Some(writer),
            file: file.to_owned(),
        })
    }

    /// A log that writes nothing (tests of other parts).
    pub fn disabled() -> Self {
        Self {
            sender: None,
            writer: None,
            file: PathBuf::new(),
        }
    }

    /// The file written.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Appends `event` (without waiting for the disk).
    pub fn record(&self, event: Event) {
        if let Some(sender) = &self.sender {
            // The writer thread ends only with the process.
            let _ = sender.send(event);
        }
    }
}

/// The next `seq` and `prev` of an existing file, after removing a line cut short.
fn recover(file: &Path) -> Result<(u64, String), String> {
    let Ok(mut handle) = OpenOptions::new().read(true).write(true).open(file) else {
        return Ok((1, GENESIS.to_owned()));
    };
    let mut last_whole = None;
    let mut end_of_whole: u64 = 0;
    let mut reader = BufReader::new(&mut handle);
    let mut buf = String::new();
    let mut offset: u64 = 0;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        offset += u64::try_from(n).map_err(|e| e.to_string())?;
        if buf.ends_with('\n') {
            end_of_whole = offset;
            last_whole = Some(buf.trim_end().to_owned());
        }
    }
    drop(reader);
    if offset != end_of_whole {
        tracing::warn!(file = %file.display(), "the audit log's last line was cut short (a crash); it is removed");
        handle.set_len(end_of_whole).map_err(|e| e.to_string())?;
        handle.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    }
    match last_whole {
        None => Ok((1, GENESIS.to_owned())),
        Some(text) => {
            let line: Line =
                serde_json::from_str(&text).map_err(|e| format!("its last line: {e}"))?;
            Ok((line.seq + 1, line.hash.unwrap_or_default()))
        }
    }
}

fn write_loop(file: File, events: mpsc::Receiver<Event>, mut seq: u64, mut prev: String) {
    let mut out = std::io::BufWriter::new(file);
    while let Ok(first) = events.recv() {
        let mut batch = vec![first];
        batch.extend(events.try_iter());
        for event in batch {
            let mut line = Line {
                seq,
                time: crate::app::iso_now_millis(),
                request_id: event.request_id,
                caller: event.caller,
                source: event.source,
                action: event.action,
                resource: event.resource,
                result: event.result,
                prev: prev.clone(),
                hash: None,
            };
            let Ok(hash) = line.digest() else { continue };
            line.hash = Some(hash.clone());
            let Ok(json) = serde_json::to_string(&line) else {
                continue;
            };
            if writeln!(out, "{json}").is_err() {
                tracing::error!("the audit log cannot be written");
                continue;
            }
            seq += 1;
            prev = hash;
        }
        if out.flush().is_err() {
            tracing::error!("the audit log cannot be flushed");
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every line is in place: how many.
    Intact(u64),
    /// The first line (1-based) that breaks the chain, and why.
    Broken {
        /// Line number in the file.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Checks a whole audit file: each line parses, its `seq` follows, its `prev` is the
/// previous line's `hash`, and its `hash` is right. A removed, reordered, inserted or
/// altered line breaks the chain at that line. (Lines removed from the end leave a
/// shorter but intact chain: compare the count with what you expect.)
///
/// # Errors
/// A message if the file cannot be read.
pub fn verify(file: &Path) -> Result<Verdict, String> {
    let handle = File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut expected_prev = GENESIS.to_owned();
    let mut count = 0;
    for (index, text) in BufReader::new(handle).lines().enumerate() {
        let number = u64::try_from(index).map_err(|e| e.to_string())? + 1;
        let text = text.map_err(|e| format!("{}: {e}", file.display()))?;
        let broken = |reason: String| {
            Ok(Verdict::Broken {
                line: number,
                reason,
            })
        };
        let Ok(line) = serde_json::from_str::<Line>(&text) else {
            return broken("not an audit line".into());
        };
        if line.seq != number {
            return broken(format!("seq {} where {number} was due", line.seq));
        }
        if line.prev != expected_prev {
            return broken("prev is not the previous line's hash".into());
        }
        let Some(hash) = line.hash.clone() else {
            return broken("no hash".into());
        };
        if line.digest()? != hash {
            return broken("the line was altered (its hash does not match)".into());
        }
        expected_prev = hash;
        count = number;
    }
    Ok(Verdict::Intact(count))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    fn event(n: u32) -> Event {
        Event {
            request_id: format!("req-{n}"),
            caller: "KAAP.x".into(),
            source: "127.0.0.1".into(),
            action: "Encrypt".into(),
            resource: "key-1".into(),
            result: "OK".into(),
        }
    }

    fn wait_lines(file: &Path, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the audit lines were not written");
    }

    #[test]
    fn the_chain_detects_removal_reordering_and_alteration() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        let log = AuditLog::open(&file).unwrap();
        for n in 0..5 {
            log.record(event(n));
        }
        let lines = wait_lines(&file, 5);
        assert_eq!(verify(&file).unwrap(), Verdict::Intact(5));

        // A restart goes on with the chain.
        drop(log);
        let log = AuditLog::open(&file).unwrap();
        log.record(event(5));
        let all = wait_lines(&file, 6);
        assert_eq!(verify(&file).unwrap(), Verdict::Intact(6));

        let check = |lines: &[String]| {
            let bad = dir.path().join("bad.log");
            std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
            verify(&bad).unwrap()
        };
        let mut removed = all.clone();
        removed.remove(2);
        assert!(matches!(check(&removed), Verdict::Broken { line: 3, .. }));
        let mut swapped = all.clone();
        swapped.swap(1, 2);
        assert!(matches!(check(&swapped), Verdict::Broken { line: 2, .. }));
        let mut altered = all.clone();
        altered[3] = altered[3].replace("\"OK\"", "\"Forbidden.NoPermission\"");
        assert!(matches!(check(&altered), Verdict::Broken { line: 4, .. }));
        let mut rehashed = all.clone();
        rehashed[0] = rehashed[0].replace("req-0", "req-X");
        assert!(matches!(check(&rehashed), Verdict::Broken { line: 1, .. }));
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn a_line_cut_short_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        let log = AuditLog::open(&file).unwrap();
        log.record(event(0));
        wait_lines(&file, 1);
        drop(log);
        let mut handle = OpenOptions::new().append(true).open(&file).unwrap();
        handle.write_all(b"{\"seq\":2,\"ti").unwrap();
        drop(handle);
        let log = AuditLog::open(&file).unwrap();
        log.record(event(1));
        wait_lines(&file, 2);
        assert_eq!(verify(&file).unwrap(), Verdict::Intact(2));
    }
}
