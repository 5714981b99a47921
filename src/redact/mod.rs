//! PII redaction: find personal data in the transcript (written or spoken,
//! Indian and UK identifiers, cards, PINs, emails, dates of birth), replace it
//! with typed placeholders in the text, the segments and the words, and give
//! the audio intervals to cover in a cleaned copy of the recording.
//!
//! [`detect`] finds the words; this module maps them back to segments, text
//! offsets and times. `pii_detected` records types, placeholders, offsets and
//! times, never a value.

pub mod audio;
pub mod check;
pub mod corpus;
pub mod detect;

use serde::{Deserialize, Serialize};

pub use detect::{Kind, Locales};

use crate::asr::{Segment, Transcript, Word};

/// How redacted audio covers a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cover {
    Silence,
    Tone,
}

impl Cover {
    /// `tone` or `silence`.
    pub fn parse(name: &str) -> Option<Cover> {
        match name.trim() {
            "tone" => Some(Cover::Tone),
            "silence" => Some(Cover::Silence),
            _ => None,
        }
    }
}

/// The cleaned copy of the audio (`redaction.audio*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AudioRedaction {
    pub cover: Cover,
    /// Seconds added before and after every span.
    pub padding_seconds: f64,
    /// Object key of the cleaned copy: `{dir}`, `{stem}`, `{ext}` and `{key}`
    /// stand for the original's folder (with its `/`), name, extension and key.
    pub key_pattern: String,
    /// Delete the original once the cleaned copy is stored and the row committed
    /// (the row's `r2_path` then points at the cleaned copy).
    pub delete_original: bool,
}

/// `[redaction]`: on when present in [`crate::config::Config`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedactionConfig {
    pub locales: Locales,
    /// Keep the raw text in `full_transcript` (for authorised viewers);
    /// `redacted_transcript`, the segments and the words are redacted regardless.
    pub keep_raw: bool,
    /// Send the redacted text to the analysis engine (default), else the raw.
    pub analyze_redacted: bool,
    pub audio: Option<AudioRedaction>,
}

/// One redacted span, as stored in `pii_detected`: never the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiiItem {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub placeholder: String,
    /// Character offsets (Unicode scalar values) of the placeholder in the
    /// redacted full text (`redacted_transcript`).
    pub start_char: usize,
    pub end_char: usize,
    /// The words' times (seconds).
    pub timestamp_start: f64,
    pub timestamp_end: f64,
    /// The segment (index in `segments`) it starts in, and its speaker.
    pub segment_id: usize,
    pub speaker: Option<String>,
    /// How many words it replaced.
    pub words: usize,
}

/// A transcript with its PII replaced.
#[derive(Debug, Clone, Default)]
pub struct Redacted {
    pub transcript: Transcript,
    pub items: Vec<PiiItem>,
    /// Intervals (seconds, merged, sorted) to cover on every channel of the audio.
    pub cover: Vec<(f64, f64)>,
}

/// Audio spans reach back to the previous word's end and on to the next
/// word's start (word edges can be late), but no further than this beyond the
/// span's own words.
const MAX_REACH_SECONDS: f64 = 1.0;

/// One word of the flattened transcript.
#[derive(Debug, Clone)]
struct Tok {
    segment: usize,
    /// Index in the segment's words, or in its whitespace split when it has none.
    index: usize,
    text: String,
    start: f64,
    end: f64,
}

/// A segment's words, or its text split on whitespace with times spread over
/// the segment when whisper gave no words.
fn segment_words(s: &Segment) -> Vec<(String, f64, f64)> {
    if !s.words.is_empty() {
        return s.words.iter().map(|w| (w.word.clone(), w.start, w.end)).collect();
    }
    let parts: Vec<&str> = s.text.split_whitespace().collect();
    let total: usize = parts.iter().map(|p| p.chars().count() + 1).sum::<usize>().max(1);
    let mut at = s.start;
    let per = (s.end - s.start).max(0.0) / total as f64;
    parts
        .iter()
        .map(|p| {
            let d = per * (p.chars().count() + 1) as f64;
            let w = (p.to_string(), at, at + d);
            at += d;
            w
        })
        .collect()
}

/// Split a word into its leading punctuation (with whitespace), its core and
/// its trailing punctuation.
fn affixes(w: &str) -> (&str, &str) {
    let start = w.find(|c: char| c.is_alphanumeric() || "+@₹£$€".contains(c)).unwrap_or(w.len());
    let end = w
        .rfind(|c: char| c.is_alphanumeric())
        .map(|i| i + w[i..].chars().next().map_or(1, |c| c.len_utf8()))
        .unwrap_or(w.len());
    (&w[..start], &w[end.max(start)..])
}

/// Find and replace the PII in `t`. Each channel is one stream of words in
/// time order, so digits said across segments are found together.
pub fn redact_transcript(t: &Transcript, locales: Locales, padding_seconds: f64) -> Redacted {
    let per_segment: Vec<Vec<(String, f64, f64)>> = t.segments.iter().map(segment_words).collect();
    let channels: std::collections::BTreeSet<usize> = t.segments.iter().map(|s| s.channel).collect();
    // (segment, index) → the finding it belongs to.
    let mut owner: std::collections::HashMap<(usize, usize), usize> = Default::default();
    let mut findings: Vec<(Kind, Vec<Tok>)> = Vec::new();
    let mut cover: Vec<(f64, f64)> = Vec::new();
    for ch in channels {
        let stream: Vec<Tok> = t
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.channel == ch)
            .flat_map(|(si, _)| {
                per_segment[si].iter().enumerate().map(move |(wi, (text, start, end))| Tok {
                    segment: si,
                    index: wi,
                    text: text.clone(),
                    start: *start,
                    end: *end,
                })
            })
            .collect();
        let words: Vec<&str> = stream.iter().map(|w| w.text.trim()).collect();
        for f in detect::detect(&words, locales) {
            let id = findings.len();
            let toks: Vec<Tok> = stream[f.first..=f.last].to_vec();
            for w in &toks {
                owner.insert((w.segment, w.index), id);
            }
            let (start, end) = (toks[0].start, toks[toks.len() - 1].end);
            let prev_end = f.first.checked_sub(1).map(|i| stream[i].end).unwrap_or(0.0);
            let next_start = stream.get(f.last + 1).map(|w| w.start).unwrap_or(f64::INFINITY);
            let lo = (start - padding_seconds).min(prev_end.max(start - MAX_REACH_SECONDS)).max(0.0);
            let hi = (end + padding_seconds).max(next_start.min(end + MAX_REACH_SECONDS));
            cover.push((lo, hi));
            findings.push((f.kind, toks));
        }
    }
    cover.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (lo, hi) in cover {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }

    // Rebuild the segments: the first word of a finding in a segment becomes
    // its placeholder (keeping the punctuation around it), the rest go.
    let mut out = t.clone();
    // finding → (segment, byte offset of the placeholder in the segment text) of each part.
    let mut parts: Vec<Vec<(usize, usize)>> = vec![Vec::new(); findings.len()];
    for (si, seg) in out.segments.iter_mut().enumerate() {
        let words = &per_segment[si];
        if !words.iter().enumerate().any(|(wi, _)| owner.contains_key(&(si, wi))) {
            continue;
        }
        let had_words = !seg.words.is_empty();
        let mut new_words: Vec<Word> = Vec::new();
        let mut text = String::new();
        let mut wi = 0;
        while wi < words.len() {
            let Some(&id) = owner.get(&(si, wi)) else {
                if had_words {
                    new_words.push(seg.words[wi].clone());
                } else {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(&words[wi].0);
                }
                wi += 1;
                continue;
            };
            let mut last = wi;
            while last + 1 < words.len() && owner.get(&(si, last + 1)) == Some(&id) {
                last += 1;
            }
            let kind = findings[id].0;
            let (lead, _) = affixes(&words[wi].0);
            let (_, trail) = affixes(&words[last].0);
            let piece = format!("{lead}{}{trail}", kind.placeholder());
            if had_words {
                let probability = seg.words[wi..=last].iter().map(|w| w.probability).fold(1.0, f64::min);
                new_words.push(Word { word: piece, start: words[wi].1, end: words[last].2, probability });
            } else {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(piece.trim());
            }
            wi = last + 1;
        }
        if had_words {
            seg.words = new_words;
            seg.text = crate::asr::join_words(&seg.words);
        } else {
            seg.text = text;
        }
        // Where each finding's placeholder sits in this segment's text.
        let mut cursor = 0;
        let mut wi = 0;
        while wi < words.len() {
            if let Some(&id) = owner.get(&(si, wi)) {
                let p = findings[id].0.placeholder();
                if let Some(off) = seg.text[cursor..].find(&p) {
                    parts[id].push((si, cursor + off));
                    cursor += off + p.len();
                }
                while wi < words.len() && owner.get(&(si, wi)) == Some(&id) {
                    wi += 1;
                }
                continue;
            }
            wi += 1;
        }
    }

    // Character offsets in the full text: segments' trimmed texts joined by a space.
    let mut seg_offset = vec![0usize; out.segments.len()];
    let mut lead_trim = vec![0usize; out.segments.len()];
    let mut at = 0usize;
    for (si, s) in out.segments.iter().enumerate() {
        let trimmed = s.text.trim();
        if trimmed.is_empty() {
            continue;
        }
        lead_trim[si] = s.text.len() - s.text.trim_start().len();
        seg_offset[si] = at;
        at += trimmed.chars().count() + 1;
    }
    let char_at = |si: usize, byte: usize| {
        let text = &out.segments[si].text;
        seg_offset[si] + text[lead_trim[si]..byte.max(lead_trim[si])].chars().count()
    };
    let mut items: Vec<PiiItem> = findings
        .iter()
        .zip(&parts)
        .filter(|(_, p)| !p.is_empty())
        .map(|((kind, toks), p)| {
            let placeholder = kind.placeholder();
            let (first_seg, first_byte) = p[0];
            let (last_seg, last_byte) = p[p.len() - 1];
            PiiItem {
                kind: *kind,
                start_char: char_at(first_seg, first_byte),
                end_char: char_at(last_seg, last_byte) + placeholder.chars().count(),
                placeholder,
                timestamp_start: toks[0].start,
                timestamp_end: toks[toks.len() - 1].end,
                segment_id: first_seg,
                speaker: out.segments[first_seg].speaker.clone(),
                words: toks.len(),
            }
        })
        .collect();
    items.sort_by_key(|i| i.start_char);
    Redacted { transcript: out, items, cover: merged }
}

/// Counts per type, for logs and `transcription_details` (no values).
pub fn counts(items: &[PiiItem]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for i in items {
        *m.entry(i.kind.name()).or_insert(0) += 1;
    }
    m
}

/// The object key of the cleaned copy of `key` under `pattern`.
pub fn cleaned_key(pattern: &str, key: &str) -> String {
    let (dir, name) = match key.rfind('/') {
        Some(i) => (&key[..=i], &key[i + 1..]),
        None => ("", key),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    pattern.replace("{dir}", dir).replace("{stem}", stem).replace("{ext}", ext).replace("{key}", key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(words: &[&str], start: f64, channel: usize) -> Segment {
        let words: Vec<Word> = words
            .iter()
            .enumerate()
            .map(|(i, w)| Word {
                word: format!(" {w}"),
                start: start + i as f64 * 0.5,
                end: start + i as f64 * 0.5 + 0.4,
                probability: 0.9,
            })
            .collect();
        Segment {
            start,
            end: words.last().map_or(start, |w| w.end),
            text: crate::asr::join_words(&words),
            words,
            confidence: 0.9,
            speaker: Some(if channel == 0 { "agent" } else { "supporter" }.into()),
            channel,
            ..Default::default()
        }
    }

    #[test]
    fn digits_across_segments_are_one_placeholder_with_times() {
        let t = Transcript {
            segments: vec![
                seg(&["Can", "I", "have", "your", "number?"], 0.0, 0),
                seg(&["It's", "nine", "eight", "seven", "six", "five,"], 1.0, 1),
                seg(&["four", "three", "two", "one", "zero."], 5.0, 1),
                seg(&["Thank", "you."], 8.0, 0),
            ],
            ..Default::default()
        };
        let r = redact_transcript(&t, Locales::ALL, 0.1);
        assert_eq!(r.items.len(), 1);
        let item = &r.items[0];
        assert_eq!(item.kind, Kind::Phone);
        assert_eq!(item.words, 10);
        assert_eq!((item.timestamp_start, item.timestamp_end), (1.5, 7.4));
        let full = r.transcript.full_text();
        assert_eq!(full, "Can I have your number? It's [PHONE], [PHONE]. Thank you.");
        let chars: Vec<char> = full.chars().collect();
        assert_eq!(chars[item.start_char..item.end_char].iter().collect::<String>(), "[PHONE], [PHONE]");
        // The words and the audio: nothing of the digits is left.
        assert!(r.transcript.segments[2].words.iter().all(|w| !w.word.contains("four")));
        assert_eq!(r.cover.len(), 1);
        assert!(r.cover[0].0 <= 1.4 && r.cover[0].1 >= 7.5, "{:?}", r.cover);
        // The other channel's words are untouched.
        assert_eq!(r.transcript.segments[3].text, "Thank you.");
    }

    #[test]
    fn segments_without_words_are_redacted_too() {
        let t = Transcript {
            segments: vec![Segment {
                start: 0.0,
                end: 4.0,
                text: " My NI number is AB123456C, thanks".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = redact_transcript(&t, Locales::ALL, 0.0);
        assert_eq!(r.transcript.full_text(), "My NI number is [UK_NINO], thanks");
        assert_eq!(r.items[0].start_char, 16);
        assert!(r.items[0].timestamp_start > 1.0 && r.items[0].timestamp_end < 4.0);
    }

    #[test]
    fn cleaned_keys() {
        assert_eq!(cleaned_key("{dir}{stem}.redacted.wav", "2026/11/call.gsm"), "2026/11/call.redacted.wav");
        assert_eq!(cleaned_key("redacted/{key}.wav", "a/b.wav"), "redacted/a/b.wav.wav");
        assert_eq!(cleaned_key("{dir}{stem}.redacted.wav", "call"), "call.redacted.wav");
    }
}
