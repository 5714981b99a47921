//! The Hinglish flag (`transcription_details.code_mixed`, `asr::is_code_mixed`)
//! on real code-mixed text (not a test; prints a table for the README).
//!
//!   CALLSCRIBE_BENCH_HINGLISH=icon2016.wa.fn.ref.new cargo bench --profile dev --bench hinglish
//!
//! The input is word-level language-tagged Hindi–English social-media text in
//! CoNLL form (`token<TAB>en|hi|univ<TAB>…`, a blank line between messages), as
//! the ICON 2016 code-mixing shared task released it (Facebook, Twitter and
//! WhatsApp; the simplified `*.fn.ref.new` files of Nguyen et al. 2021, "Automatic
//! language identification in code-switched Hindi-English social media text").
//! The data is not in the registries this project builds from, so it is not
//! committed; the bench reads the path given.
//!
//! Each message of at least 4 tagged words is put in one class by its tags:
//! English (no `hi` word), romanised Hindi (no `en` word), or code-mixed (at least
//! two of each; one stray word is ambiguous in tweets and left out). The flag is
//! meant to be on for code-mixed and romanised Hindi (how Hinglish is typed and
//! how `asr.romanise` writes it), off for English.

use callscribe::asr::is_code_mixed;

fn main() {
    let Ok(path) = std::env::var("CALLSCRIBE_BENCH_HINGLISH") else {
        println!("CALLSCRIBE_BENCH_HINGLISH (an ICON 2016 *.fn.ref.new file) not set; skipped");
        return;
    };
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // (class, messages, flagged)
    let mut rows = [("English", 0usize, 0usize), ("romanised Hindi", 0, 0), ("code-mixed", 0, 0)];
    for message in data.split("\n\n") {
        let mut words = Vec::new();
        let (mut hi, mut en) = (0usize, 0usize);
        for line in message.lines() {
            let mut cols = line.split('\t');
            let (Some(token), Some(tag)) = (cols.next(), cols.next()) else { continue };
            match tag {
                "hi" => hi += 1,
                "en" => en += 1,
                _ => continue, // names, mentions, links, punctuation, emoji
            }
            words.push(token);
        }
        if hi + en < 4 {
            continue;
        }
        let class = match (hi, en) {
            (0, _) => 0,
            (_, 0) => 1,
            (h, e) if h >= 2 && e >= 2 => 2,
            _ => continue,
        };
        let text = words.join(" ");
        rows[class].1 += 1;
        rows[class].2 += is_code_mixed(&text) as usize;
        if std::env::var("CALLSCRIBE_BENCH_SHOW").is_ok() && (class == 0) == is_code_mixed(&text) {
            println!("missed ({}): {text}", rows[class].0);
        }
    }
    println!("{path}");
    println!("| class | messages | flagged code-mixed |");
    println!("|---|---:|---:|");
    for (class, n, flagged) in rows {
        println!("| {class} | {n} | {flagged} ({:.0} %) |", 100.0 * flagged as f64 / n.max(1) as f64);
    }
}
