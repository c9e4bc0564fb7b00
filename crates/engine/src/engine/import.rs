//! Imports of files (`POST /api/import`, `ioc import`), in bounded memory whatever their size.
//!
//! A CSV, the format long histories come in, is read row by row and sent through the
//! pipeline a chunk at a time, a few chunks in flight: a 15 MB file and a 1.5 GB one cost the
//! same memory, and what the engine took is committed as it goes. The other formats (CAP,
//! NGSI-LD, GeoJSON, JSON) are single documents a parser needs whole: they are read to the
//! end, up to a size the caller sets, and decoded at once. Either way the refusals come back
//! grouped by cause (see [`crate::ingest::refusals`]) and stand in the dead letters as one
//! letter per cause with its count, not one per row.

use super::{Engine, EngineError};
use crate::decode::csv::{CsvDecoder, CsvMapping, Row};
use crate::ingest::Item;
use crate::pipeline::{Chunks, FileReport, CHUNK};
use ioc_model::{ImportRejection, ImportReport};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

impl Engine {
    /// Imports a whole document (CAP, NGSI-LD, GeoJSON, CSV, JSON with a mapping) held in
    /// memory: decodes it, sends it through the pipeline in chunks and waits until every
    /// chunk is committed. `format` `auto` picks the decoder from the name and the content.
    pub async fn import(
        &self,
        source: &str,
        format: &str,
        mapping: Option<&toml::Value>,
        name: Option<&str>,
        payload: Vec<u8>,
    ) -> Result<ImportReport, EngineError> {
        let format = if format == "auto" {
            crate::decode::detect(name, &payload)
        } else {
            format
        };
        let decoder = crate::decode::build(format, mapping).map_err(EngineError::BadInput)?;
        let health = self.source_health(source, "file");
        health.message(self.clock.now());
        let ctx = crate::decode::DecodeCtx {
            source,
            origin: name,
            received_at: self.clock.now(),
        };
        let items = match decoder.decode(&payload, &ctx) {
            Ok(items) => items,
            Err(reason) => vec![Item::Rejected(reason)],
        };
        let report =
            crate::pipeline::ingest_file(&self.sender, source, name, items, Arc::from(payload))
                .await
                .map_err(|_| EngineError::Closed)?;
        Ok(report_of(format, report))
    }

    /// Imports what `reader` gives (a file, an upload as it arrives). A CSV is streamed row
    /// by row in bounded memory; any other format is read whole, and refused past
    /// `max_document` bytes. `format` `auto` decides from the name and the first bytes.
    ///
    /// When the reader fails halfway (an upload cut off), what came before is committed and
    /// kept, and the error says how much that was.
    pub async fn import_reader<R: Read + Send + 'static>(
        &self,
        source: &str,
        format: &str,
        mapping: Option<toml::Value>,
        name: Option<String>,
        reader: R,
        max_document: u64,
    ) -> Result<ImportReport, EngineError> {
        let handle = tokio::runtime::Handle::current();
        let sender = self.sender.clone();
        let health = self.source_health(source, "file");
        health.message(self.clock.now());
        let source_: Arc<str> = Arc::from(source);
        let format_ = format.to_string();
        let name_ = name.clone();
        let mapping_ = mapping.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<Read_, EngineError> {
            let mut reader = BufReader::with_capacity(64 * 1024, reader);
            let format = if format_ == "auto" {
                let head = reader.fill_buf().map_err(|e| broke_off(e, 0, 0))?;
                crate::decode::detect(name_.as_deref(), head).to_string()
            } else {
                format_
            };
            if format != "csv" {
                let mut whole = Vec::new();
                (&mut reader)
                    .take(max_document.saturating_add(1))
                    .read_to_end(&mut whole)
                    .map_err(|e| broke_off(e, 0, 0))?;
                if whole.len() as u64 > max_document {
                    return Err(EngineError::TooLarge(format!(
                        "a {format} document is decoded whole, and this one is over the \
                         {max_document}-byte limit (a CSV has none: it is streamed)"
                    )));
                }
                return Ok(Read_::Whole(format, whole));
            }
            let mapping: CsvMapping = mapping_
                .ok_or_else(|| EngineError::BadInput("a CSV import needs a mapping".into()))?
                .try_into()
                .map_err(|e: toml::de::Error| {
                    EngineError::BadInput(format!("mapping: {}", e.to_string().trim()))
                })?;
            let decoder = CsvDecoder::new(mapping).map_err(EngineError::BadInput)?;
            let chunks = Chunks::new(sender, source_, name_.map(Arc::from));
            stream_csv(&handle, &decoder, reader, chunks).map(|r| Read_::Streamed(Box::new(r)))
        })
        .await
        .map_err(|e| EngineError::Internal(format!("import: {e}")))??;
        match read {
            Read_::Streamed(report) => Ok(report_of("csv", *report)),
            Read_::Whole(format, bytes) => {
                self.import(source, &format, mapping.as_ref(), name.as_deref(), bytes)
                    .await
            }
        }
    }
}

/// What the blocking half of an import read.
enum Read_ {
    Streamed(Box<FileReport>),
    Whole(String, Vec<u8>),
}

/// Reads a CSV row by row on this (blocking) thread, sending each chunk through `chunks`.
fn stream_csv<R: Read>(
    handle: &tokio::runtime::Handle,
    decoder: &CsvDecoder,
    reader: R,
    mut chunks: Chunks,
) -> Result<FileReport, EngineError> {
    let closed = |_| EngineError::Closed;
    let mut rdr = decoder.reader(reader);
    let header = rdr
        .headers()
        .map_err(|e| match e.kind() {
            csv::ErrorKind::Io(_) => EngineError::BadInput(format!("the file broke off: {e}")),
            _ => EngineError::BadInput(format!("the CSV header: {e}")),
        })?
        .clone();
    let cols = decoder.columns(&header).map_err(EngineError::BadInput)?;
    let mut chunk: Vec<Item> = decoder.station().into_iter().collect();
    let mut record = csv::StringRecord::new();
    let mut line: u64 = 1;
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                line += 1;
                match decoder.row(line, &cols, &record) {
                    Row::Items(items) => chunk.extend(items),
                    Row::Skipped => {}
                    Row::Refused(reason) => chunk.push(Item::Rejected(reason)),
                }
            }
            Err(e) => {
                if let csv::ErrorKind::Io(io) = e.kind() {
                    // What came before is sent and kept; say how much.
                    let e = std::io::Error::new(io.kind(), io.to_string());
                    handle.block_on(chunks.send(chunk)).map_err(closed)?;
                    let report = handle.block_on(chunks.finish()).map_err(closed)?;
                    return Err(broke_off(e, line, report.accepted));
                }
                line += 1;
                chunk.push(Item::Rejected(format!("line {line}: {e}")));
            }
        }
        if chunk.len() >= CHUNK {
            handle
                .block_on(chunks.send(std::mem::take(&mut chunk)))
                .map_err(closed)?;
        }
    }
    if !chunk.is_empty() {
        handle.block_on(chunks.send(chunk)).map_err(closed)?;
    }
    handle.block_on(chunks.finish()).map_err(closed)
}

/// The error of a read that failed halfway: over a size limit, or cut off.
fn broke_off(e: std::io::Error, line: u64, kept: usize) -> EngineError {
    let text = e.to_string();
    let kept = if line > 0 {
        format!(" after line {line}; the {kept} items before it are kept")
    } else {
        String::new()
    };
    if text.contains("length limit exceeded") {
        EngineError::TooLarge(format!("the file is over the size limit{kept}"))
    } else {
        EngineError::BadInput(format!("the file could not be read: {text}{kept}"))
    }
}

fn report_of(format: &str, r: FileReport) -> ImportReport {
    ImportReport {
        format: format.to_string(),
        accepted: r.accepted,
        history: r.history,
        refused: r.refused.total(),
        rejected: r
            .refused
            .into_groups()
            .into_iter()
            .map(|g| ImportRejection {
                reason: g.reason,
                count: g.count,
                samples: g.samples,
            })
            .collect(),
    }
}
