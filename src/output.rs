//! Transcript file formats for `callscribe transcribe`: JSON (everything),
//! SRT and WebVTT subtitles, plain text and TSV, with speakers.

use crate::asr::Transcript;
use crate::audio::AudioQuality;
use crate::diarize::metrics::CallMetrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Srt,
    Vtt,
    Txt,
    Tsv,
}

/// The formats one `transcribe` run writes, in the order given, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formats(pub Vec<Format>);

/// `json`, `srt,vtt,json`, or `all`.
pub fn parse_formats(s: &str) -> Result<Formats, String> {
    use clap::ValueEnum;
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let add: Vec<Format> = if name.eq_ignore_ascii_case("all") {
            Format::value_variants().to_vec()
        } else {
            vec![Format::from_str(name, true)
                .map_err(|_| format!("unknown format `{name}`: json, srt, vtt, txt, tsv or all"))?]
        };
        for f in add {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    if out.is_empty() {
        return Err("no format given: json, srt, vtt, txt, tsv or all".into());
    }
    Ok(Formats(out))
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Txt => "txt",
            Format::Tsv => "tsv",
        }
    }
}

fn stamp(t: f64, sep: char) -> String {
    let ms = (t.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}{sep}{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Output paths for `files` under `dir`: `<stem>.<ext>`, with `-2`, `-3`, …
/// added where two inputs share a stem (`a/call.wav` and `b/call.mp3`), so no
/// output of the run overwrites another.
pub fn output_stems(files: &[std::path::PathBuf]) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    files
        .iter()
        .map(|f| {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("transcript").to_string();
            let n = seen.entry(stem.clone()).or_insert(0);
            loop {
                *n += 1;
                let candidate = if *n == 1 { stem.clone() } else { format!("{stem}-{n}") };
                if taken.insert(candidate.clone()) {
                    return candidate;
                }
            }
        })
        .collect()
}

/// Render one transcript.
pub fn render(format: Format, source: &str, t: &Transcript, quality: &AudioQuality, metrics: &CallMetrics) -> String {
    let who = |s: &crate::asr::Segment| s.speaker.clone().unwrap_or_else(|| "speaker".into());
    match format {
        Format::Json => {
            let v = serde_json::json!({
                "source": source,
                "language": t.language,
                "language_probability": t.language_probability,
                "code_mixed": crate::asr::is_code_mixed(&t.full_text()),
                "model": t.model,
                "duration_seconds": quality.duration_seconds,
                "processing_seconds": t.processing_seconds,
                "full_context_retries": t.full_context_retries,
                "text": t.full_text(),
                "segments": t.segments,
                "speaker_metrics": metrics,
                "audio_quality": quality,
            });
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Srt => t
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}\n{} --> {}\n[{}] {}\n\n",
                    i + 1,
                    stamp(s.start, ','),
                    stamp(s.end, ','),
                    who(s),
                    s.text.trim()
                )
            })
            .collect(),
        Format::Vtt => {
            let mut out = String::from("WEBVTT\n\n");
            for s in &t.segments {
                out.push_str(&format!(
                    "{} --> {}\n<v {}>{}\n\n",
                    stamp(s.start, '.'),
                    stamp(s.end, '.'),
                    who(s),
                    s.text.trim()
                ));
            }
            out
        }
        Format::Txt => t.segments.iter().map(|s| format!("{}: {}\n", who(s), s.text.trim())).collect(),
        Format::Tsv => {
            let mut out = String::from("start\tend\tspeaker\ttext\n");
            for s in &t.segments {
                let text = s.text.trim().replace(['\t', '\n'], " ");
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    (s.start * 1000.0).round(),
                    (s.end * 1000.0).round(),
                    who(s),
                    text
                ));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Segment;

    #[test]
    fn formats_parse_as_lists_and_all() {
        assert_eq!(parse_formats("json").unwrap(), Formats(vec![Format::Json]));
        assert_eq!(parse_formats("srt, VTT,json,srt").unwrap(), Formats(vec![Format::Srt, Format::Vtt, Format::Json]));
        assert_eq!(parse_formats("all").unwrap().0.len(), 5);
        assert!(parse_formats("docx").unwrap_err().contains("docx"));
        assert!(parse_formats(",").is_err());
    }

    #[test]
    fn output_names_never_collide() {
        let files: Vec<std::path::PathBuf> =
            ["a/call.wav", "b/call.mp3", "call-2.wav", "c/call.ogg", "other.wav"].iter().map(Into::into).collect();
        assert_eq!(output_stems(&files), ["call", "call-2", "call-2-2", "call-3", "other"]);
    }

    #[test]
    fn subtitle_formats() {
        let t = Transcript {
            segments: vec![Segment {
                start: 61.5,
                end: 3725.25,
                text: " Hello there".into(),
                words: vec![],
                confidence: 0.9,
                no_speech_probability: 0.0,
                speaker: Some("agent".into()),
                channel: 0,
            }],
            ..Default::default()
        };
        let q = AudioQuality::unknown();
        let m = CallMetrics::default();
        assert_eq!(render(Format::Srt, "x", &t, &q, &m), "1\n00:01:01,500 --> 01:02:05,250\n[agent] Hello there\n\n");
        assert!(render(Format::Vtt, "x", &t, &q, &m).contains("00:01:01.500 --> 01:02:05.250\n<v agent>Hello there"));
        assert_eq!(render(Format::Txt, "x", &t, &q, &m), "agent: Hello there\n");
        assert!(render(Format::Tsv, "x", &t, &q, &m).ends_with("61500\t3725250\tagent\tHello there\n"));
        let j: serde_json::Value = serde_json::from_str(&render(Format::Json, "x", &t, &q, &m)).unwrap();
        assert_eq!(j["segments"][0]["speaker"], "agent");
    }
}
