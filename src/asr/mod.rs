//! Speech recognition: whisper.cpp through whisper-rs, kept in [`whisper`] (the
//! only place that touches the FFI). This module holds the plain data a
//! transcription yields and the clean-up applied to it: voice-activity windows
//! in, no-speech segments and repetition loops out.

pub mod child;
pub mod edges;
pub mod romanise;
pub mod whisper;

use serde::{Deserialize, Serialize};

pub use whisper::{AsrConfig, WhisperEngine};

/// One recognised word with its time span (seconds) and probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

/// One segment of speech.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: Vec<Word>,
    /// Mean token probability of the segment's words.
    pub confidence: f64,
    pub no_speech_probability: f64,
    /// `agent`/`supporter` (the configured labels), by channel or by the mono rule.
    pub speaker: Option<String>,
    /// The channel it was heard on (stereo), else 0.
    pub channel: usize,
}

/// A recording's transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub language: String,
    pub language_probability: f64,
    pub segments: Vec<Segment>,
    pub model: String,
    /// Seconds spent in whisper, finding the speech included.
    pub processing_seconds: f64,
    /// Of those, seconds spent finding the speech (the energy VAD and packing).
    #[serde(default)]
    pub vad_seconds: f64,
    /// Seconds spent telling the speakers apart and computing the call metrics.
    #[serde(default)]
    pub diarize_seconds: f64,
    /// Segments dropped as no-speech, and repeated words or segments cut.
    pub dropped_no_speech: usize,
    pub repetitions_cut: usize,
    /// Windows decoded again at whisper's full 30 s context after a fitted
    /// context (`asr.fit_audio_ctx`) gave doubtful text: none, a loop, or words
    /// whisper itself doubts.
    #[serde(default)]
    pub full_context_retries: usize,
}

impl Transcript {
    /// The words of every segment, in time order, joined.
    pub fn full_text(&self) -> String {
        self.segments.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ")
    }

    /// Mean word probability over the whole call.
    pub fn confidence(&self) -> f64 {
        let words: Vec<f64> = self.segments.iter().flat_map(|s| s.words.iter().map(|w| w.probability)).collect();
        if words.is_empty() {
            0.0
        } else {
            words.iter().sum::<f64>() / words.len() as f64
        }
    }
}

/// Whether text mixes Latin and Devanagari script, or writes Hindi in Latin
/// letters (common Hinglish function words): code-mixed Hinglish.
pub fn is_code_mixed(text: &str) -> bool {
    let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let deva = text.chars().filter(|c| ('\u{0900}'..='\u{097F}').contains(c)).count();
    if latin > 0 && deva > 0 && latin.min(deva) * 20 >= (latin + deva) {
        return true;
    }
    // Hindi function words and common verbs as typed in Latin letters, none of
    // them an English word (chosen on ICON 2016 tweets; `benches/hinglish.rs`).
    #[rustfmt::skip]
    const HINDI_IN_LATIN: &[&str] = &[
        "hai", "hain", "hei", "ki", "ke", "ka", "ko", "se", "ne", "bhi", "nahi", "nahin", "nhi", "aur", "bahut",
        "bohot", "kya", "kyaa", "ho", "hoga", "hota", "hoti", "hua", "hui", "tha", "thi", "kaam", "bhai", "aaj",
        "kal", "abhi", "ab", "kar", "kr", "karo", "karna", "karne", "karte", "karta", "karti", "karenge", "kiya",
        "kiye", "koi", "kuch", "kuchh", "aap", "aapko", "aapka", "aapke", "mein", "mai", "mujhe", "mujhko", "mera",
        "mere", "meri", "tera", "tere", "teri", "tum", "tumhe", "tumhara", "hum", "humko", "hamara", "apna", "apni",
        "apne", "raha", "rahe", "rahi", "ji", "ye", "yeh", "wo", "woh", "toh", "ek", "liye", "sab", "jo", "jab",
        "tab", "baad", "gaya", "gaye", "gayi", "baat", "pe", "baar", "dekh", "dekho", "diya", "dena", "ghar",
        "sirf", "yaar", "laga", "tak", "ya", "kaha", "kahan", "wala", "wale", "wali", "haan", "theek", "thik",
        "matlab", "kyunki", "kyun", "kyon", "lekin", "accha", "acha", "achha", "paisa", "paise", "bol", "bolo",
        "hu", "hoon", "hun", "kaise", "kab", "kitna", "kitne", "phir", "fir", "bilkul", "zaroor", "jaise", "waise",
        "chahiye", "sakte", "sakta", "sakti", "uska", "uski", "uske", "iska", "iski", "iske", "unka", "unki",
        "inka", "kabhi", "agar", "lekar", "dijiye", "batao", "bataiye", "rupaye", "hazaar", "hazar", "shukriya",
        "dhanyavaad", "namaste", "kripya", "samajh", "pata", "nai", "na",
    ];
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect();
    if words.len() < 4 {
        return false;
    }
    let hindi = words.iter().filter(|w| HINDI_IN_LATIN.contains(&w.as_str())).count();
    let english = words.len() - hindi;
    hindi * 10 >= words.len() && english * 10 >= words.len()
}

/// Cut repetition loops, whisper's best-known failure: a word or phrase of up
/// to 6 words repeated more than `max_repeats` times in a row is kept
/// `max_repeats` times; a segment whose text repeats the previous segment's
/// exactly is dropped. Returns the number of cuts.
pub fn cut_repetitions(segments: &mut Vec<Segment>, max_repeats: usize) -> usize {
    let mut cuts = 0;
    for seg in segments.iter_mut() {
        let n = seg.words.len();
        if n < 2 {
            continue;
        }
        let norm: Vec<String> = seg.words.iter().map(|w| normalise(&w.word)).collect();
        let mut keep = vec![true; n];
        for size in 1..=6usize {
            let mut i = 0;
            while i + size <= n {
                let mut reps = 1;
                while i + (reps + 1) * size <= n && (0..size).all(|k| norm[i + k] == norm[i + reps * size + k]) {
                    reps += 1;
                }
                if reps > max_repeats {
                    keep[i + max_repeats * size..i + reps * size].iter_mut().for_each(|k| *k = false);
                    cuts += 1;
                    i += reps * size;
                } else {
                    i += 1;
                }
            }
        }
        if keep.iter().any(|k| !k) {
            let words: Vec<Word> = seg.words.iter().zip(&keep).filter(|(_, k)| **k).map(|(w, _)| w.clone()).collect();
            seg.text = join_words(&words);
            if let Some(last) = words.last() {
                seg.end = seg.end.min(last.end.max(seg.start));
            }
            seg.words = words;
        }
    }
    let before = segments.len();
    let mut prev: Option<(String, usize)> = None;
    segments.retain(|s| {
        let key = (normalise(&s.text), s.channel);
        let dup = !key.0.is_empty() && prev.as_ref() == Some(&key);
        prev = Some(key);
        !dup
    });
    cuts + (before - segments.len())
}

fn normalise(w: &str) -> String {
    w.chars().filter(|c| c.is_alphanumeric()).flat_map(|c| c.to_lowercase()).collect()
}

/// Words for scoring: lower case, letters and digits only.
pub fn wer_tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).flat_map(|c| c.to_lowercase()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference` (substitutions,
/// deletions and insertions over reference words; Levenshtein on words).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (wer_tokens(reference), wer_tokens(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(rw != hw)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len() as f64
}

/// Rebuild text from words (whisper's word pieces carry their leading space).
pub fn join_words(words: &[Word]) -> String {
    words.iter().map(|w| w.word.as_str()).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str, start: f64) -> Segment {
        let words: Vec<Word> = text
            .split(' ')
            .enumerate()
            .map(|(i, w)| Word {
                word: format!(" {w}"),
                start: start + i as f64 * 0.3,
                end: start + i as f64 * 0.3 + 0.25,
                probability: 0.9,
            })
            .collect();
        Segment {
            start,
            end: words.last().unwrap().end,
            text: text.into(),
            words,
            confidence: 0.9,
            no_speech_probability: 0.0,
            speaker: None,
            channel: 0,
        }
    }

    #[test]
    fn repetition_loops_are_cut() {
        let mut s = vec![seg("thank you thank you thank you thank you thank you thank you for calling", 0.0)];
        let cuts = cut_repetitions(&mut s, 3);
        assert_eq!(s[0].text, "thank you thank you thank you for calling");
        assert!(cuts >= 1);
        let mut s = vec![seg("ok ok ok ok ok ok ok", 0.0), seg("bye", 3.0), seg("bye", 4.0), seg("bye", 5.0)];
        cut_repetitions(&mut s, 3);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "ok ok ok");
        // Normal speech is untouched.
        let mut s = vec![seg("I will pay on Friday and then again next month", 0.0)];
        assert_eq!(cut_repetitions(&mut s, 3), 0);
    }

    #[test]
    fn word_error_rate() {
        assert_eq!(wer("Hello, world!", "hello world"), 0.0);
        assert_eq!(wer("a b c d", "a x c"), 0.5);
        assert_eq!(wer("a b", "a b c d"), 1.0);
        assert_eq!(wer("", ""), 0.0);
    }

    #[test]
    fn hinglish_is_flagged() {
        assert!(is_code_mixed("Haan ji, main kal payment kar dunga, theek hai?"));
        assert!(is_code_mixed("मैं payment कल कर दूंगा, EMI ready है"));
        assert!(!is_code_mixed("I will make the payment tomorrow, thank you."));
        assert!(!is_code_mixed("मैं कल भुगतान कर दूंगा धन्यवाद"));
    }
}
