//! Devanagari written in Latin letters the way Hinglish is typed in India
//! ("main kal payment kar dunga"), for `asr.romanise`: agents and QA teams who
//! read Hindi in Latin script, and search that matches what they type.
//!
//! Letters map one to one (क k, ख kh, श sh, ज़ z, …); a consonant carries the
//! inherent vowel "a" unless a vowel sign or virama follows. The inherent vowel
//! is dropped at the end of a word of more than one syllable (कर → kar) and in
//! the middle where a vowel comes before and a full syllable after (भुगतान →
//! bhugtaan, करना → karna): the usual schwa-deletion rule of Hindi. Long ā is
//! "aa" inside a word and "a" at its end; ī and ū are "i" and "u" (जी → ji,
//! दूंगा → dunga), as typed.

/// What one Devanagari letter is.
enum Letter {
    Consonant(&'static str),
    Vowel(&'static str),
    Sign(&'static str),
    Virama,
    Nasal,
    Other(&'static str),
}

fn letter(c: char) -> Option<Letter> {
    use Letter::*;
    Some(match c {
        'क' => Consonant("k"),
        'ख' => Consonant("kh"),
        'ग' => Consonant("g"),
        'घ' => Consonant("gh"),
        'ङ' => Consonant("n"),
        'च' => Consonant("ch"),
        'छ' => Consonant("chh"),
        'ज' => Consonant("j"),
        'झ' => Consonant("jh"),
        'ञ' => Consonant("n"),
        'ट' => Consonant("t"),
        'ठ' => Consonant("th"),
        'ड' => Consonant("d"),
        'ढ' => Consonant("dh"),
        'ण' => Consonant("n"),
        'त' => Consonant("t"),
        'थ' => Consonant("th"),
        'द' => Consonant("d"),
        'ध' => Consonant("dh"),
        'न' => Consonant("n"),
        'प' => Consonant("p"),
        'फ' => Consonant("ph"),
        'ब' => Consonant("b"),
        'भ' => Consonant("bh"),
        'म' => Consonant("m"),
        'य' => Consonant("y"),
        'र' => Consonant("r"),
        'ल' => Consonant("l"),
        'ळ' => Consonant("l"),
        'व' => Consonant("v"),
        'श' => Consonant("sh"),
        'ष' => Consonant("sh"),
        'स' => Consonant("s"),
        'ह' => Consonant("h"),
        '\u{0958}' => Consonant("q"),
        '\u{0959}' => Consonant("kh"),
        '\u{095A}' => Consonant("g"),
        '\u{095B}' => Consonant("z"),
        '\u{095C}' => Consonant("r"),
        '\u{095D}' => Consonant("rh"),
        '\u{095E}' => Consonant("f"),
        '\u{095F}' => Consonant("y"),
        'अ' => Vowel("a"),
        'आ' => Vowel("aa"),
        'इ' => Vowel("i"),
        'ई' => Vowel("i"),
        'उ' => Vowel("u"),
        'ऊ' => Vowel("u"),
        'ऋ' => Vowel("ri"),
        'ए' => Vowel("e"),
        'ऐ' => Vowel("ai"),
        'ओ' => Vowel("o"),
        'औ' => Vowel("au"),
        'ऑ' => Vowel("o"),
        'ा' => Sign("aa"),
        'ि' => Sign("i"),
        'ी' => Sign("i"),
        'ु' => Sign("u"),
        'ू' => Sign("u"),
        'ृ' => Sign("ri"),
        'े' => Sign("e"),
        'ै' => Sign("ai"),
        'ो' => Sign("o"),
        'ौ' => Sign("au"),
        'ॅ' => Sign("e"),
        'ॉ' => Sign("o"),
        '्' => Virama,
        'ं' | 'ँ' => Nasal,
        'ः' => Other("h"),
        '।' | '॥' => Other("."),
        '०' => Other("0"),
        '१' => Other("1"),
        '२' => Other("2"),
        '३' => Other("3"),
        '४' => Other("4"),
        '५' => Other("5"),
        '६' => Other("6"),
        '७' => Other("7"),
        '८' => Other("8"),
        '९' => Other("9"),
        '\u{093C}' => Other(""), // a lone nukta
        _ => return None,
    })
}

/// One syllable of a Devanagari word: its consonants, and its vowel (`None`:
/// the inherent "a"; `Some("")`: none, after a virama).
struct Syllable {
    consonants: String,
    vowel: Option<&'static str>,
    nasal: bool,
    tail: String,
}

/// A letter that is no syllable of its own (a digit, a danda, anything not
/// Devanagari): it ends the pending consonants' syllable and follows the last one.
fn close_with_tail(syl: &mut Vec<Syllable>, pending: &mut String, tail: &str) {
    if !pending.is_empty() {
        syl.push(Syllable { consonants: std::mem::take(pending), vowel: None, nasal: false, tail: String::new() });
    }
    match syl.last_mut() {
        Some(s) => s.tail.push_str(tail),
        None => syl.push(Syllable { consonants: String::new(), vowel: Some(""), nasal: false, tail: tail.into() }),
    }
}

fn word(w: &str) -> String {
    // Precomposed nukta letters come decomposed from whisper: fold them first.
    let folded: String = {
        let chars: Vec<char> = w.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if chars.get(i + 1) == Some(&'\u{093C}') {
                let composed = match c {
                    'क' => Some('\u{0958}'),
                    'ख' => Some('\u{0959}'),
                    'ग' => Some('\u{095A}'),
                    'ज' => Some('\u{095B}'),
                    'ड' => Some('\u{095C}'),
                    'ढ' => Some('\u{095D}'),
                    'फ' => Some('\u{095E}'),
                    'य' => Some('\u{095F}'),
                    _ => None,
                };
                if let Some(k) = composed {
                    out.push(k);
                    i += 2;
                    continue;
                }
            }
            out.push(c);
            i += 1;
        }
        out
    };
    let mut syl: Vec<Syllable> = Vec::new();
    let mut pending_consonants = String::new();
    let new = |consonants: String, vowel| Syllable { consonants, vowel, nasal: false, tail: String::new() };
    for c in folded.chars() {
        match letter(c) {
            Some(Letter::Consonant(k)) => {
                if !pending_consonants.is_empty() && !pending_consonants.ends_with('\u{0}') {
                    // The previous consonant had no sign: it keeps its inherent vowel.
                    syl.push(new(std::mem::take(&mut pending_consonants), None));
                }
                pending_consonants.push_str(k);
            }
            Some(Letter::Virama) => {
                // A conjunct: the next consonant joins this syllable's cluster.
                if pending_consonants.is_empty() {
                    if let Some(s) = syl.last_mut() {
                        s.vowel = Some("");
                    }
                }
                pending_consonants.push('\u{0}');
            }
            Some(Letter::Sign(v)) => syl.push(new(std::mem::take(&mut pending_consonants), Some(v))),
            Some(Letter::Vowel(v)) => {
                if !pending_consonants.is_empty() {
                    syl.push(new(std::mem::take(&mut pending_consonants), None));
                }
                syl.push(new(String::new(), Some(v)));
            }
            Some(Letter::Nasal) => {
                if !pending_consonants.is_empty() {
                    syl.push(new(std::mem::take(&mut pending_consonants), None));
                }
                if let Some(s) = syl.last_mut() {
                    s.nasal = true;
                }
            }
            Some(Letter::Other(o)) => close_with_tail(&mut syl, &mut pending_consonants, o),
            None => close_with_tail(&mut syl, &mut pending_consonants, c.encode_utf8(&mut [0; 4])),
        }
    }
    if !pending_consonants.is_empty() {
        // A trailing virama leaves a cluster with no vowel at all.
        let ends_in_virama = pending_consonants.ends_with('\u{0}');
        syl.push(new(pending_consonants, if ends_in_virama { Some("") } else { None }));
    }
    // Schwa deletion: the inherent vowel goes at the end of a polysyllable and
    // between a vowel and a full syllable (right to left, never twice in a row).
    let n = syl.len();
    let mut dropped = vec![false; n];
    if n > 1 && syl[n - 1].vowel.is_none() && !syl[n - 1].consonants.is_empty() {
        dropped[n - 1] = true;
    }
    for i in (1..n.saturating_sub(1)).rev() {
        let has_vowel = |k: usize| !dropped[k] && syl[k].vowel != Some("");
        if syl[i].vowel.is_none()
            && !syl[i].nasal
            && !syl[i].consonants.contains('\u{0}')
            && !syl[i].consonants.is_empty()
            && !syl[i + 1].consonants.is_empty()
            && has_vowel(i + 1)
            && has_vowel(i - 1)
            && !dropped[i + 1]
        {
            dropped[i] = true;
        }
    }
    let mut out = String::new();
    for (i, s) in syl.iter().enumerate() {
        out.push_str(&s.consonants.replace('\u{0}', ""));
        let vowel = match s.vowel {
            None if dropped[i] => "",
            None => "a",
            Some("aa") if i == n - 1 && !s.nasal => "a",
            Some(v) => v,
        };
        out.push_str(vowel);
        if s.nasal {
            out.push('n');
        }
        out.push_str(&s.tail);
    }
    out
}

/// `text` with every Devanagari word in Latin letters; other text unchanged.
pub fn romanise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut current = String::new();
    let is_deva = |c: char| ('\u{0900}'..='\u{097F}').contains(&c);
    for c in text.chars() {
        if is_deva(c) {
            current.push(c);
        } else {
            if !current.is_empty() {
                out.push_str(&word(&std::mem::take(&mut current)));
            }
            out.push(c);
        }
    }
    if !current.is_empty() {
        out.push_str(&word(&current));
    }
    out
}

/// Whether `text` holds any Devanagari.
pub fn has_devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hinglish_as_typed() {
        for (deva, latin) in [
            ("मैं", "main"),
            ("कल", "kal"),
            ("कर", "kar"),
            ("दूंगा", "dunga"),
            ("है", "hai"),
            ("आप", "aap"),
            ("नहीं", "nahin"),
            ("जी", "ji"),
            ("ठीक", "thik"),
            ("पैसे", "paise"),
            ("भुगतान", "bhugtaan"),
            ("करना", "karna"),
            ("समझ", "samajh"),
            ("धन्यवाद", "dhanyavaad"),
            ("ज़रूर", "zarur"),
            ("क्या", "kya"),
            ("हम", "ham"),
            ("बात", "baat"),
        ] {
            assert_eq!(romanise(deva), latin, "{deva}");
        }
    }

    #[test]
    fn sentences_keep_latin_words_digits_and_punctuation() {
        assert_eq!(romanise("मैं कल payment कर दूंगा, EMI २५०० है।"), "main kal payment kar dunga, EMI 2500 hai.");
        assert_eq!(romanise("Thank you"), "Thank you");
        assert!(!has_devanagari(&romanise("आपका लोन खाता बकाया है")));
    }
}
