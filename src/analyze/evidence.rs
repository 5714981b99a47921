//! Evidence: where in the call a finding comes from. Every topic, action item,
//! agent action, compliance flag and score impact names the segments it rests
//! on and a quote from them; [`check`] finds the quote in those segments (after
//! [`normalise`]: case, punctuation, spacing and placeholders' brackets do not
//! count) and takes the times from the segments, never from the engine. A
//! finding whose quote is not in the segments it cites is dropped and counted.

use serde::{Deserialize, Serialize};

use crate::asr::Transcript;

/// Where a finding is in the call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub segment_ids: Vec<usize>,
    pub quote: String,
    /// From the cited segments: the first one's start, the last one's end.
    pub timestamp_start: f64,
    pub timestamp_end: f64,
}

/// Lower-case words of `s` (letters and digits of any script), joined by single
/// spaces: `"I'll pay, on FRIDAY!"` → `"i ll pay on friday"`.
pub fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split(|c: char| !c.is_alphanumeric() && !is_mark(c)).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Combining marks (Devanagari vowel signs and viramas are not alphanumeric).
pub(super) fn is_mark(c: char) -> bool {
    matches!(c as u32, 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963 | 0x0300..=0x036F)
}

/// Why a citation does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    NoSegments,
    NoSuchSegment(usize),
    EmptyQuote,
    NotInSegments,
}

/// Check `quote` against the segments `ids` of `t`. The quote holds when its
/// words appear, in order and next to each other, in the cited segments' words
/// (segments joined in the order cited, so a quote may run across two); a
/// quote of 5 or more words may miss one word of its own (a small model drops or
/// changes a filler word).
pub fn check(t: &Transcript, ids: &[usize], quote: &str) -> Result<Evidence, Unsupported> {
    if ids.is_empty() {
        return Err(Unsupported::NoSegments);
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if let Some(bad) = ids.iter().find(|i| **i >= t.segments.len()) {
        return Err(Unsupported::NoSuchSegment(*bad));
    }
    let q = normalise(quote);
    if q.is_empty() {
        return Err(Unsupported::EmptyQuote);
    }
    let cited = ids.iter().map(|i| normalise(&t.segments[*i].text)).collect::<Vec<_>>().join(" ");
    let words: Vec<&str> = cited.split(' ').collect();
    let want: Vec<&str> = q.split(' ').collect();
    let holds = format!(" {cited} ").contains(&format!(" {q} ")) || (want.len() >= 5 && near_match(&words, &want));
    if !holds {
        return Err(Unsupported::NotInSegments);
    }
    Ok(Evidence {
        timestamp_start: crate::contract::round(t.segments[ids[0]].start, 3),
        timestamp_end: crate::contract::round(ids.iter().map(|i| t.segments[*i].end).fold(0.0, f64::max), 3),
        segment_ids: ids,
        quote: quote.trim().to_string(),
    })
}

/// `want` occurs in `words` with one of its own words left out or changed.
fn near_match(words: &[&str], want: &[&str]) -> bool {
    (0..want.len()).any(|skip| {
        let without: Vec<&str> = want.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, w)| *w).collect();
        // Left out: the rest is contiguous. Changed: the same run with any word at `skip`.
        words.windows(without.len()).any(|w| w == without.as_slice())
            || words.windows(want.len()).any(|w| w.iter().zip(want).enumerate().all(|(i, (a, b))| i == skip || a == b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Segment;

    fn call() -> Transcript {
        let seg = |start: f64, text: &str| Segment {
            start,
            end: start + 3.0,
            text: text.into(),
            speaker: Some("agent".into()),
            ..Default::default()
        };
        Transcript {
            segments: vec![
                seg(0.0, "Good morning, this is Asha from City Finance."),
                seg(3.5, "I lost my job. I can pay five thousand on Friday."),
                seg(7.0, "If you don't pay, the police will come to your house!"),
                seg(10.5, "मैं शुक्रवार को पाँच हज़ार रुपये जमा कर दूँगा।"),
                seg(14.0, "My number is [PHONE], call me."),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn quotes_are_found_in_their_segments_whatever_the_case_and_punctuation() {
        let t = call();
        let e = check(&t, &[2], "the POLICE will come to your house").unwrap();
        assert_eq!((e.timestamp_start, e.timestamp_end, e.segment_ids.clone()), (7.0, 10.0, vec![2]));
        assert!(check(&t, &[1], "I can pay five thousand on Friday").is_ok());
        assert!(check(&t, &[3], "पाँच हज़ार रुपये").is_ok(), "Devanagari with its vowel signs");
        assert!(check(&t, &[4], "my number is PHONE").is_ok(), "placeholders keep their word");
        // Across two cited segments; times span both.
        let e = check(&t, &[2, 1], "on Friday. If you don't pay").unwrap();
        assert_eq!((e.timestamp_start, e.timestamp_end), (3.5, 10.0));
        // One word of a long quote changed.
        assert!(check(&t, &[1], "I could pay five thousand on Friday").is_ok());
    }

    #[test]
    fn invented_or_misplaced_quotes_are_not_evidence() {
        let t = call();
        assert_eq!(check(&t, &[0], "the police will come"), Err(Unsupported::NotInSegments), "wrong segment");
        assert_eq!(check(&t, &[1], "I will pay ten thousand today"), Err(Unsupported::NotInSegments));
        assert_eq!(check(&t, &[9], "police"), Err(Unsupported::NoSuchSegment(9)));
        assert_eq!(check(&t, &[], "police"), Err(Unsupported::NoSegments));
        assert_eq!(check(&t, &[2], " ... "), Err(Unsupported::EmptyQuote));
        assert_eq!(check(&t, &[1], "pay five"), Ok(check(&t, &[1], "pay five").unwrap()));
        assert!(check(&t, &[1], "ay fiv").is_err(), "whole words only");
        assert!(check(&t, &[2], "the army will come").is_err(), "short quotes must match exactly");
    }
}
