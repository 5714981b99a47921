//! Finding PII in a stream of words, written or spoken.
//!
//! Each word is reduced to the code it contributes to an identifier: digits for
//! numerals and number words (English, Hindi in Latin letters or Devanagari,
//! Devanagari digits; "double five", "oh" for zero, "ninety eight"), a capital
//! letter for a spelled letter, itself for an upper-case code like `SW1A`, and
//! nothing for an ordinary word. Consecutive coded words form a run; every run,
//! and every word-aligned part of one, is tested against the entity rules
//! (check digits first, then the words said just before it), longest first.
//! A finding is a range of words, so it maps back to the words' audio times.
//!
//! Amounts ("twelve thousand five hundred", "12,500", "₹500") never join a run;
//! digits with no validator (PIN, CVV, account numbers, expiry) are redacted
//! only when the words before them say what they are.

use serde::{Deserialize, Serialize};

use super::check;

/// The kinds of PII found, with their placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "AADHAAR")]
    Aadhaar,
    #[serde(rename = "IN_PAN")]
    Pan,
    #[serde(rename = "PHONE")]
    Phone,
    #[serde(rename = "IN_UPI")]
    Upi,
    #[serde(rename = "IN_IFSC")]
    Ifsc,
    #[serde(rename = "BANK_ACCOUNT")]
    BankAccount,
    #[serde(rename = "IN_VOTER_ID")]
    VoterId,
    #[serde(rename = "PASSPORT")]
    Passport,
    #[serde(rename = "IN_GSTIN")]
    Gstin,
    #[serde(rename = "IN_VEHICLE")]
    Vehicle,
    #[serde(rename = "UK_NINO")]
    Nino,
    #[serde(rename = "UK_SORT_CODE")]
    SortCode,
    #[serde(rename = "UK_POSTCODE")]
    Postcode,
    #[serde(rename = "UK_NHS")]
    Nhs,
    #[serde(rename = "CARD")]
    Card,
    #[serde(rename = "CVV")]
    Cvv,
    #[serde(rename = "CARD_EXPIRY")]
    Expiry,
    #[serde(rename = "PIN")]
    Pin,
    #[serde(rename = "EMAIL")]
    Email,
    #[serde(rename = "DOB")]
    Dob,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::Aadhaar,
        Kind::Pan,
        Kind::Phone,
        Kind::Upi,
        Kind::Ifsc,
        Kind::BankAccount,
        Kind::VoterId,
        Kind::Passport,
        Kind::Gstin,
        Kind::Vehicle,
        Kind::Nino,
        Kind::SortCode,
        Kind::Postcode,
        Kind::Nhs,
        Kind::Card,
        Kind::Cvv,
        Kind::Expiry,
        Kind::Pin,
        Kind::Email,
        Kind::Dob,
    ];

    /// The type name stored in `pii_detected` (`AADHAAR`, `UK_NINO`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Aadhaar => "AADHAAR",
            Kind::Pan => "IN_PAN",
            Kind::Phone => "PHONE",
            Kind::Upi => "IN_UPI",
            Kind::Ifsc => "IN_IFSC",
            Kind::BankAccount => "BANK_ACCOUNT",
            Kind::VoterId => "IN_VOTER_ID",
            Kind::Passport => "PASSPORT",
            Kind::Gstin => "IN_GSTIN",
            Kind::Vehicle => "IN_VEHICLE",
            Kind::Nino => "UK_NINO",
            Kind::SortCode => "UK_SORT_CODE",
            Kind::Postcode => "UK_POSTCODE",
            Kind::Nhs => "UK_NHS",
            Kind::Card => "CARD",
            Kind::Cvv => "CVV",
            Kind::Expiry => "CARD_EXPIRY",
            Kind::Pin => "PIN",
            Kind::Email => "EMAIL",
            Kind::Dob => "DOB",
        }
    }

    /// What replaces the words: `[AADHAAR]`, `[PHONE]`, …
    pub fn placeholder(self) -> String {
        format!("[{}]", self.name())
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// Which national entity sets are on (`redaction.locales`); cards, CVV, expiry,
/// PIN/OTP, email and date of birth are always on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locales {
    pub india: bool,
    pub uk: bool,
}

impl Locales {
    pub const ALL: Locales = Locales { india: true, uk: true };

    /// `["in", "gb"]` (`uk` for `gb` too); the first unknown name is the error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Locales, String> {
        let mut l = Locales { india: false, uk: false };
        for n in names {
            match n.as_ref().trim().to_ascii_lowercase().as_str() {
                "in" => l.india = true,
                "gb" | "uk" => l.uk = true,
                other => return Err(other.to_string()),
            }
        }
        Ok(l)
    }
}

/// One finding: words `first..=last` of the stream are a `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub first: usize,
    pub last: usize,
}

/// What one word contributes.
#[derive(Debug, Clone, Default)]
struct Tok {
    /// Lower-cased, punctuation stripped.
    lower: String,
    /// Punctuation stripped, case kept.
    core: String,
    /// Its part of an identifier; `Some("")` for a joiner inside a run
    /// ("double", "slash", the unit of "ninety eight").
    code: Option<String>,
    /// The other reading of a spelled `O`: the digit 0.
    alt: Option<String>,
    /// The code came from number words or numerals (not letters).
    numeric: bool,
    /// Said as a word ("five", "oh"), not written as a numeral.
    spoken: bool,
    /// `oh`, `o`, `do`: a digit only beside other digits.
    ambiguous: bool,
    /// A tens word ("ninety") or a single digit word, for "ninety eight".
    tens: bool,
    unit: bool,
    /// A written numeral in the `12-34-56` form (a sort code as written).
    sort_shape: bool,
    /// `hundred`, `thousand`, `lakh`…: the words around it are an amount.
    scale: bool,
}

const UNITS: &[(&str, u8)] = &[
    ("zero", 0),
    ("nought", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    // Hindi in Latin letters.
    ("shunya", 0),
    ("shoonya", 0),
    ("sunya", 0),
    ("ek", 1),
    ("teen", 3),
    ("char", 4),
    ("chaar", 4),
    ("paanch", 5),
    ("panch", 5),
    ("paach", 5),
    ("chhe", 6),
    ("chhah", 6),
    ("chah", 6),
    ("chhey", 6),
    ("saat", 7),
    ("aath", 8),
    ("nau", 9),
    ("nao", 9),
    // Devanagari.
    ("शून्य", 0),
    ("सुन्न", 0),
    ("एक", 1),
    ("दो", 2),
    ("तीन", 3),
    ("चार", 4),
    ("पांच", 5),
    ("पाँच", 5),
    ("छह", 6),
    ("छः", 6),
    ("छे", 6),
    ("सात", 7),
    ("आठ", 8),
    ("नौ", 9),
];

/// Digit words that are also common words: digits only beside other digits.
const AMBIGUOUS: &[(&str, u8)] =
    &[("oh", 0), ("o", 0), ("do", 2), ("no", 9), ("tin", 3), ("che", 6), ("sat", 7), ("aat", 8)];

const TEENS: &[(&str, u8)] = &[
    ("ten", 10),
    ("eleven", 11),
    ("twelve", 12),
    ("thirteen", 13),
    ("fourteen", 14),
    ("fifteen", 15),
    ("sixteen", 16),
    ("seventeen", 17),
    ("eighteen", 18),
    ("nineteen", 19),
    ("das", 10),
];

const TENS: &[(&str, u8)] = &[
    ("twenty", 2),
    ("thirty", 3),
    ("forty", 4),
    ("fifty", 5),
    ("sixty", 6),
    ("seventy", 7),
    ("eighty", 8),
    ("ninety", 9),
];

const SCALES: &[&str] = &[
    "hundred",
    "thousand",
    "lakh",
    "lakhs",
    "lac",
    "lacs",
    "crore",
    "crores",
    "million",
    "billion",
    "hazaar",
    "hazar",
    "sau",
    "सौ",
    "हज़ार",
    "हजार",
    "लाख",
    "करोड़",
    "grand",
];

const MULTIPLIERS: &[(&str, usize)] = &[("double", 2), ("triple", 3), ("treble", 3)];
const JOINERS: &[&str] = &["slash", "dash", "hyphen", "/", "-"];

fn lookup(table: &[(&str, u8)], w: &str) -> Option<u8> {
    table.iter().find(|(k, _)| *k == w).map(|&(_, v)| v)
}

/// Devanagari digits to ASCII.
fn ascii_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '०'..='९' => char::from(b'0' + (c as u32 - '०' as u32) as u8),
            c => c,
        })
        .collect()
}

fn strip(w: &str) -> &str {
    w.trim_matches(|c: char| {
        !(c.is_alphanumeric() || c == '+' || c == '@' || c == '₹' || c == '£' || c == '$' || c == '€' || c == '/')
            || c == '।'
    })
    .trim_end_matches(['.', '/'])
}

fn analyse(word: &str) -> Tok {
    let core = ascii_digits(strip(word));
    let lower = core.to_lowercase();
    let mut t = Tok { core: core.clone(), lower: lower.clone(), ..Default::default() };
    if core.is_empty() || core.contains('@') {
        return t;
    }
    if SCALES.contains(&lower.as_str()) {
        t.scale = true;
        return t;
    }
    if let Some(d) = lookup(UNITS, &lower) {
        t.code = Some(d.to_string());
        (t.numeric, t.spoken, t.unit) = (true, true, true);
        return t;
    }
    // A spelled O is the letter or the digit 0: both are tried.
    if core == "O" || core == "o" {
        t.code = Some("O".into());
        t.alt = Some("0".into());
        return t;
    }
    if let Some(d) = lookup(AMBIGUOUS, &lower) {
        t.code = Some(d.to_string());
        (t.numeric, t.spoken, t.ambiguous) = (true, true, true);
        return t;
    }
    if let Some(d) = lookup(TEENS, &lower) {
        t.code = Some(d.to_string());
        (t.numeric, t.spoken) = (true, true);
        return t;
    }
    if let Some(d) = lookup(TENS, &lower) {
        t.code = Some(format!("{d}0"));
        (t.numeric, t.spoken, t.tens) = (true, true, true);
        return t;
    }
    if MULTIPLIERS.iter().any(|(k, _)| *k == lower) || JOINERS.contains(&lower.as_str()) {
        return t; // resolved against its neighbours in `tokens`
    }
    let has_digit = core.chars().any(|c| c.is_ascii_digit());
    // Numerals: digits with separators. Grouping commas, currency and decimals
    // mark an amount, never an identifier.
    if has_digit && core.chars().all(|c| c.is_ascii_digit() || "+-./()".contains(c)) {
        let decimal = core.rsplit_once('.').is_some_and(|(a, b)| !a.contains('.') && (1..=2).contains(&b.len()));
        if !decimal || core.matches('.').count() > 1 {
            t.code = Some(core.chars().filter(|c| c.is_ascii_digit()).collect());
            t.numeric = true;
            t.sort_shape = check::shape(&core, "DD-DD-DD");
        }
        return t;
    }
    if core.starts_with(['₹', '£', '$', '€']) || core.contains(',') {
        return t;
    }
    // Ordinals (12th) belong to dates, handled by the date rule.
    if has_digit && ["st", "nd", "rd", "th"].iter().any(|s| lower.ends_with(s)) && lower.len() <= 4 {
        return t;
    }
    // Hyphenated number words and spelled letters: "ninety-eight", "A-B-C".
    if core.contains('-') {
        let parts: Vec<Tok> = core.split('-').filter(|p| !p.is_empty()).map(analyse).collect();
        if parts.len() > 1 && parts.iter().all(|p| p.code.as_deref().is_some_and(|c| !c.is_empty())) {
            let mut code = String::new();
            let mut i = 0;
            while i < parts.len() {
                let c = parts[i].code.clone().unwrap_or_default();
                if parts[i].tens && parts.get(i + 1).is_some_and(|n| n.unit) {
                    code.push_str(&c[..1]);
                    code.push_str(parts[i + 1].code.as_deref().unwrap_or("0"));
                    i += 2;
                    continue;
                }
                code.push_str(&c);
                i += 1;
            }
            t.numeric = parts.iter().all(|p| p.numeric);
            t.spoken = parts.iter().any(|p| p.spoken);
            t.code = Some(code);
        }
        return t;
    }
    let alnum = core.chars().all(|c| c.is_ascii_alphanumeric());
    if alnum && core.len() == 1 && core.chars().all(|c| c.is_ascii_uppercase()) {
        t.code = Some(core.clone());
        return t;
    }
    // Upper-case codes (SW1A, MH12, ABCPE1234F) and lower-case ones with digits.
    if alnum && core.len() <= 15 && (has_digit || (core.len() <= 5 && core.chars().all(|c| c.is_ascii_uppercase()))) {
        let up = core.to_ascii_uppercase();
        // "O7700": a zero written as the letter.
        if has_digit && up.chars().all(|c| c.is_ascii_digit() || c == 'O') {
            t.code = Some(up.replace('O', "0"));
            t.numeric = true;
        } else {
            t.code = Some(up);
        }
    }
    t
}

fn has_digits(t: &Tok) -> bool {
    t.code.as_deref().is_some_and(|c| c.bytes().any(|b| b.is_ascii_digit()))
}

/// Words to tokens, with the neighbour rules applied: "ninety eight", "double
/// five", "oh" and "do" beside digits, "slash" between digits, amounts.
fn tokens(words: &[&str]) -> Vec<Tok> {
    let mut t: Vec<Tok> = words.iter().map(|w| analyse(w)).collect();
    let n = t.len();
    // Amounts: number words next to a scale word are not identifier digits.
    for i in 0..n {
        if t[i].scale {
            for j in [i.wrapping_sub(1), i + 1] {
                if j < n && t[j].spoken {
                    t[j].code = None;
                }
            }
        }
    }
    // "ninety eight" → 98.
    for i in 0..n.saturating_sub(1) {
        if t[i].tens && t[i + 1].unit && t[i].code.is_some() && t[i + 1].code.is_some() {
            let d = t[i].code.as_deref().unwrap_or("0")[..1].to_string() + t[i + 1].code.as_deref().unwrap_or("");
            t[i].code = Some(d);
            t[i + 1].code = Some(String::new());
        }
    }
    // "double five", "triple nine".
    for i in 0..n.saturating_sub(1) {
        if let Some(&(_, times)) = MULTIPLIERS.iter().find(|(k, _)| *k == t[i].lower) {
            if let Some(c) = t[i + 1].code.clone().filter(|c| c.len() == 1) {
                t[i + 1].code = Some(c.repeat(times));
                t[i].code = Some(String::new());
                t[i].numeric = t[i + 1].numeric;
            }
        }
    }
    // "oh", "o", "do": digits only in a chain that touches a plain digit word.
    // A "double" before a digit counts as one.
    let mut resolved: Vec<bool> = t.iter().map(|x| !x.ambiguous && x.numeric && x.code.is_some()).collect();
    loop {
        let mut changed = false;
        for i in 0..n {
            if t[i].ambiguous && !resolved[i] && ((i > 0 && resolved[i - 1]) || (i + 1 < n && resolved[i + 1])) {
                resolved[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for i in 0..n {
        if t[i].ambiguous && !resolved[i] {
            t[i].code = None;
            t[i].numeric = false;
        }
    }
    // "slash", "dash" between digits.
    for i in 1..n.saturating_sub(1) {
        if JOINERS.contains(&t[i].lower.as_str()) && has_digits(&t[i - 1]) && has_digits(&t[i + 1]) {
            t[i].code = Some(String::new());
        }
    }
    t
}

const CONTEXT_BEFORE: usize = 8;
const CONTEXT_AFTER: usize = 3;

/// Does any of `keys` appear among the words near `a..=b`? Keys of several
/// words match as a phrase.
fn near(t: &[Tok], a: usize, b: usize, keys: &[&str]) -> bool {
    let lo = a.saturating_sub(CONTEXT_BEFORE);
    let hi = (b + 1 + CONTEXT_AFTER).min(t.len());
    let words: Vec<&str> = t[lo..a].iter().chain(&t[b + 1..hi]).map(|x| x.lower.as_str()).collect();
    let joined = format!(" {} ", words.join(" "));
    keys.iter().any(|k| joined.contains(&format!(" {k} ")))
}

const AADHAAR_WORDS: &[&str] = &["aadhaar", "aadhar", "adhaar", "adhar", "aadha", "uid", "uidai", "आधार"];
const CARD_WORDS: &[&str] =
    &["card", "credit", "debit", "visa", "mastercard", "amex", "rupay", "maestro", "कार्ड", "long number"];
const NHS_WORDS: &[&str] = &["nhs"];
const SORT_WORDS: &[&str] = &["sort code", "sort", "sortcode"];
const ACCOUNT_WORDS: &[&str] = &[
    "account",
    "a/c",
    "acc",
    "acct",
    "khata",
    "खाता",
    "account number",
    "sort code",
    "savings account",
    "current account",
];
const CVV_WORDS: &[&str] =
    &["cvv", "cvc", "cv2", "cvv2", "security code", "three digits", "back of the card", "3 digits"];
const EXPIRY_WORDS: &[&str] =
    &["expiry", "expires", "expire", "expiring", "exp", "valid till", "valid thru", "valid until", "expiration"];
const PIN_WORDS: &[&str] = &[
    "pin",
    "otp",
    "one time password",
    "one-time password",
    "passcode",
    "password",
    "verification code",
    "mpin",
    "पिन",
    "ओटीपी",
    "code is",
];
const DOB_WORDS: &[&str] =
    &["born", "birth", "dob", "d.o.b", "birthday", "janam", "janamdin", "janmdin", "जन्म", "date of birth"];
const PASSPORT_WORDS: &[&str] = &["passport"];
/// Words that name a phone number, whatever else was said before.
const PHONE_SPECIFIC: &[&str] = &["mobile", "phone", "whatsapp", "landline", "cell", "call me", "ring me", "fone"];
const PHONE_WORDS: &[&str] = &["phone", "mobile", "number", "call", "whatsapp", "contact", "landline", "fone"];
/// Words that make a number an order, reference or amount, not a person's.
const NOT_PERSONAL: &[&str] = &[
    "order",
    "reference",
    "ref",
    "invoice",
    "transaction",
    "txn",
    "tracking",
    "awb",
    "consignment",
    "docket",
    "ticket",
    "complaint",
    "sku",
    "product",
    "item",
    "model",
    "part",
    "serial",
    "batch",
    "parcel",
    "rupees",
    "rs",
    "pounds",
    "amount",
    "balance",
    "emi",
    "due",
    "outstanding",
    "pay",
    "paid",
    "₹",
    "£",
];

fn phone(s: &str, loc: Locales) -> bool {
    let b = s.as_bytes();
    let n = b.len();
    let at = |i: usize, set: &[u8]| b.get(i).is_some_and(|c| set.contains(c));
    let india = loc.india
        && ((n == 10 && at(0, b"6789"))
            || (n == 11 && b[0] == b'0' && at(1, b"6789"))
            || (n == 12 && s.starts_with("91") && at(2, b"6789"))
            || (n == 11 && b[0] == b'0' && at(1, b"12345"))
            || (n == 12 && s.starts_with("91") && at(2, b"12345")));
    let uk = loc.uk
        && ((n == 11 && b[0] == b'0' && at(1, b"12378"))
            || (n == 12 && s.starts_with("44") && at(2, b"12378"))
            || (n == 10 && s.starts_with("01")));
    india || uk
}

fn date_digits(s: &str, years: std::ops::RangeInclusive<i32>) -> bool {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i32>().unwrap_or(0);
    s.len() == 8
        && ((check::valid_date(n(0..2) as u32, n(2..4) as u32, n(4..8)) && years.contains(&n(4..8)))
            || (check::valid_date(n(6..8) as u32, n(4..6) as u32, n(0..4)) && years.contains(&n(0..4))))
}

/// The kind of the digits-only code `s` said as words `a..=b`, if any.
fn digits_kind(t: &[Tok], a: usize, b: usize, s: &str, loc: Locales) -> Option<Kind> {
    let n = s.len();
    let first = s.as_bytes()[0];
    let ctx = |keys: &[&str]| near(t, a, b, keys);
    let personal = !ctx(NOT_PERSONAL);
    if loc.india && n == 12 && first >= b'2' && ctx(AADHAAR_WORDS) && check::verhoeff(s) {
        return Some(Kind::Aadhaar);
    }
    if (13..=19).contains(&n)
        && check::luhn(s)
        && (ctx(CARD_WORDS) || (matches!(n, 15 | 16) && (b'3'..=b'6').contains(&first) && !ctx(ACCOUNT_WORDS)))
    {
        return Some(Kind::Card);
    }
    if loc.uk && n == 10 && ctx(NHS_WORDS) && check::nhs(s) {
        return Some(Kind::Nhs);
    }
    if loc.uk && n == 6 && (t[a].sort_shape && a == b || ctx(SORT_WORDS)) {
        return Some(Kind::SortCode);
    }
    if n == 8 && ctx(DOB_WORDS) && date_digits(s, 1900..=2030) {
        return Some(Kind::Dob);
    }
    if personal && phone(s, loc) && (!ctx(ACCOUNT_WORDS) || ctx(PHONE_SPECIFIC)) {
        return Some(Kind::Phone);
    }
    if ctx(ACCOUNT_WORDS) && ((loc.uk && n == 8) || (loc.india && (9..=18).contains(&n))) {
        return Some(Kind::BankAccount);
    }
    if loc.india && n == 12 && first >= b'2' && personal && check::verhoeff(s) {
        return Some(Kind::Aadhaar);
    }
    if ctx(CVV_WORDS) && (3..=4).contains(&n) {
        return Some(Kind::Cvv);
    }
    let month = |r: std::ops::Range<usize>| s[r].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if ctx(EXPIRY_WORDS) && ((n == 4 && month(0..2)) || (n == 6 && month(0..2) && s.starts_with_at(2, "20"))) {
        return Some(Kind::Expiry);
    }
    if ctx(PIN_WORDS) && (4..=8).contains(&n) {
        return Some(Kind::Pin);
    }
    if loc.uk && n == 9 && ctx(PASSPORT_WORDS) {
        return Some(Kind::Passport);
    }
    if loc.india
        && phone(s, loc)
        && ctx(PHONE_WORDS)
        && !ctx(&["order", "reference", "ref", "invoice", "transaction", "tracking"])
    {
        return Some(Kind::Phone);
    }
    None
}

trait StartsWithAt {
    fn starts_with_at(&self, at: usize, p: &str) -> bool;
}

impl StartsWithAt for str {
    fn starts_with_at(&self, at: usize, p: &str) -> bool {
        self.get(at..).is_some_and(|r| r.starts_with(p))
    }
}

/// The kind of the letters-and-digits code `s`, if any.
fn code_kind(t: &[Tok], a: usize, b: usize, s: &str, loc: Locales) -> Option<Kind> {
    let ctx = |keys: &[&str]| near(t, a, b, keys);
    if loc.india {
        if check::pan(s) {
            return Some(Kind::Pan);
        }
        if check::gstin(s) {
            return Some(Kind::Gstin);
        }
        if check::ifsc(s) {
            return Some(Kind::Ifsc);
        }
        if check::voter_id(s) {
            return Some(Kind::VoterId);
        }
        if check::shape(s, "LDDDDDDD") && ctx(PASSPORT_WORDS) {
            return Some(Kind::Passport);
        }
        if check::vehicle(s) && !ctx(NOT_PERSONAL) {
            return Some(Kind::Vehicle);
        }
    }
    if loc.uk {
        if check::nino(s) && s.len() >= 8 {
            return Some(Kind::Nino);
        }
        if check::postcode(s) && !ctx(NOT_PERSONAL) && !ctx(&["code"])
            || check::postcode(s) && ctx(&["postcode", "post code", "zip"])
        {
            return Some(Kind::Postcode);
        }
    }
    None
}

const TLDS: &[&str] = &["com", "in", "org", "net", "co", "uk", "io", "edu", "gov", "info", "biz", "me", "ac"];
const UPI_HANDLES: &[&str] = &[
    "upi",
    "ybl",
    "ibl",
    "axl",
    "paytm",
    "apl",
    "yapl",
    "okaxis",
    "oksbi",
    "okhdfcbank",
    "okicici",
    "sbi",
    "icici",
    "hdfcbank",
    "axisbank",
    "kotak",
    "pnb",
    "boi",
    "barodampay",
    "aubank",
    "idfcbank",
    "indus",
    "freecharge",
    "jio",
];
const LOCAL_STOP: &[&str] = &[
    "is", "my", "email", "e-mail", "mail", "id", "address", "it's", "its", "at", "on", "to", "the", "me", "send", "it",
    "upi", "and", "number", "your", "hai", "है", "please",
];

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && local.chars().all(|c| c.is_alphanumeric() || "._%+-".contains(c))
        && domain.contains('.')
        && domain.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && domain.rsplit('.').next().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

fn is_upi(s: &str) -> bool {
    let Some((local, handle)) = s.rsplit_once('@') else { return false };
    local.len() >= 2
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && handle.len() >= 2
        && handle.chars().all(|c| c.is_ascii_alphabetic())
}

/// Emails and UPI IDs, written (`a.b@gmail.com`, `ravi@okaxis`) or said
/// ("ravi dot kumar at gmail dot com", "nine eight … at ybl").
fn addresses(t: &[Tok], loc: Locales, out: &mut Vec<Found>) {
    let n = t.len();
    for (i, tok) in t.iter().enumerate() {
        if tok.core.contains('@') {
            let s = tok.core.trim_end_matches('.');
            if is_email(s) {
                out.push(Found { kind: Kind::Email, first: i, last: i });
            } else if loc.india && is_upi(s) {
                out.push(Found { kind: Kind::Upi, first: i, last: i });
            }
        }
    }
    for k in 1..n.saturating_sub(1) {
        if t[k].lower != "at" {
            continue;
        }
        // The domain: "gmail dot com", "gmail.com", or a UPI handle.
        let mut end = None;
        let mut kind = Kind::Email;
        let d = &t[k + 1].lower;
        if d.contains('.') && d.rsplit('.').next().is_some_and(|tld| TLDS.contains(&tld)) {
            end = Some(k + 1);
        } else if d.chars().all(|c| c.is_ascii_alphanumeric()) && !d.is_empty() {
            let mut j = k + 1;
            while j + 2 < n && t[j + 1].lower == "dot" && t[j + 2].lower.chars().all(|c| c.is_ascii_alphanumeric()) {
                j += 2;
                if TLDS.contains(&t[j].lower.as_str()) {
                    end = Some(j);
                }
            }
            if end.is_none() && loc.india && UPI_HANDLES.contains(&d.as_str()) {
                end = Some(k + 1);
                kind = Kind::Upi;
            }
        }
        let Some(end) = end else { continue };
        // The local part, back to a stop word: "ravi dot kumar", "nine eight …".
        let sep = |w: &str| ["dot", "underscore", "hyphen", "dash"].contains(&w);
        let mut start = k;
        let mut j = k;
        let mut after_part = false;
        while j > 0 && k - j < 12 {
            let w = &t[j - 1];
            if sep(&w.lower) {
                if !after_part {
                    break;
                }
                after_part = false;
                j -= 1;
                continue;
            }
            let part = !w.lower.is_empty()
                && !LOCAL_STOP.contains(&w.lower.as_str())
                && w.lower.chars().all(|c| c.is_alphanumeric() || "._-".contains(c));
            // Two parts in a row only when both are digits ("nine eight … at ybl").
            if !part || (after_part && !(w.numeric && t[j].numeric)) {
                break;
            }
            start = j - 1;
            after_part = true;
            j -= 1;
        }
        if start < k {
            out.push(Found { kind, first: start, last: end });
        }
    }
}

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month_of(w: &str) -> Option<u32> {
    let w = if w == "sept" { "sep" } else { w };
    MONTHS.iter().position(|m| *m == w || (w.len() == 3 && m.starts_with(w))).map(|i| i as u32 + 1)
}

/// "first" … "twentieth" (days of the month are said with them).
pub(crate) const ORDINALS: &[&str] = &[
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
];

/// A day of the month said or written at `t[i]` ("12", "12th", "twelfth",
/// "twenty first", "twenty-first"), with the words it took.
fn day_at(t: &[Tok], i: usize) -> Option<(u32, usize)> {
    let w = t.get(i)?.lower.as_str();
    let digits: String = w.chars().take_while(|c| c.is_ascii_digit()).collect();
    if !digits.is_empty() && (digits.len() == w.len() || ["st", "nd", "rd", "th"].contains(&&w[digits.len()..])) {
        return digits.parse().ok().filter(|d| (1..=31).contains(d)).map(|d| (d, 1));
    }
    if let Some(p) = ORDINALS.iter().position(|o| *o == w) {
        return Some((p as u32 + 1, 1));
    }
    let tens = |w: &str| match w {
        "twenty" => Some(20),
        "thirty" => Some(30),
        _ => None,
    };
    if let Some((a, b)) = w.split_once('-') {
        if let (Some(x), Some(p)) = (tens(a), ORDINALS.iter().position(|o| *o == b)) {
            return Some((x + p as u32 + 1, 1));
        }
    }
    if let Some(x) = tens(w) {
        if let Some(next) = t.get(i + 1) {
            if let Some(p) = ORDINALS.iter().position(|o| *o == next.lower).filter(|p| *p < 9) {
                return Some((x + p as u32 + 1, 2));
            }
            if let Some(u) = lookup(UNITS, &next.lower).filter(|u| (1..=9).contains(u)) {
                return Some((x + u as u32, 2));
            }
        }
        return Some((x, 1));
    }
    lookup(UNITS, w).or_else(|| lookup(TEENS, w)).filter(|d| *d >= 1).map(|d| (d as u32, 1))
}

/// A year at `t[i]`: "1985", "nineteen eighty five", "two thousand (and) three".
fn year_at(t: &[Tok], i: usize) -> Option<(i32, usize)> {
    let w = t.get(i)?.lower.as_str();
    if w.len() == 4 && w.chars().all(|c| c.is_ascii_digit()) {
        return w.parse().ok().map(|y| (y, 1));
    }
    let hi = lookup(TEENS, w).filter(|v| (19..=20).contains(v)).map(|v| v as i32).or((w == "twenty").then_some(20));
    if let Some(hi) = hi {
        let next = t.get(i + 1).map(|x| x.lower.as_str()).unwrap_or("");
        if let Some(tn) = lookup(TENS, next) {
            let unit = t.get(i + 2).and_then(|x| lookup(UNITS, &x.lower)).filter(|u| *u >= 1);
            return Some((hi * 100 + tn as i32 * 10 + unit.unwrap_or(0) as i32, if unit.is_some() { 3 } else { 2 }));
        }
        if let Some(tn) = lookup(TEENS, next) {
            return Some((hi * 100 + tn as i32, 2));
        }
    }
    if w == "two" && t.get(i + 1).is_some_and(|x| x.lower == "thousand") {
        let mut j = i + 2;
        if t.get(j).is_some_and(|x| x.lower == "and") {
            j += 1;
        }
        let rest = t.get(j).and_then(|x| lookup(UNITS, &x.lower).or_else(|| lookup(TEENS, &x.lower)));
        return Some((2000 + rest.unwrap_or(0) as i32, j - i + usize::from(rest.is_some())));
    }
    None
}

/// Dates of birth said with a month name near a birth word: "born on the
/// twelfth of March nineteen eighty five", "DOB 3rd June 1990", "June 3, 1990".
fn birth_dates(t: &[Tok], out: &mut Vec<Found>) {
    for k in 0..t.len() {
        if !DOB_WORDS.iter().any(|w| !w.contains(' ') && t[k].lower == *w) {
            continue;
        }
        for m in k + 1..(k + 10).min(t.len()) {
            let Some(month) = month_of(&t[m].lower) else { continue };
            // Day before the month ("12th of March") or after it ("March 12").
            let mut first = m;
            let mut last = m;
            let mut day = None;
            let before = if m >= 2 && t[m - 1].lower == "of" { m - 2 } else { m.wrapping_sub(1) };
            for start in [before.wrapping_sub(1), before] {
                if start < t.len() && start > k {
                    if let Some((d, used)) = day_at(t, start) {
                        if start + used == m || start + used + 1 == m && t[m - 1].lower == "of" {
                            day = Some(d);
                            first = start;
                            break;
                        }
                    }
                }
            }
            let mut next = m + 1;
            if day.is_none() {
                if let Some((d, used)) = day_at(t, m + 1) {
                    day = Some(d);
                    last = m + used;
                    next = m + 1 + used;
                }
            }
            let Some(day) = day else { continue };
            if next < t.len() && t[next].lower == "of" {
                next += 1;
            }
            let mut year = 2000;
            if let Some((y, used)) = year_at(t, next) {
                if (1900..=2030).contains(&y) {
                    year = y;
                    last = next + used - 1;
                }
            }
            if check::valid_date(day, month, year) {
                out.push(Found { kind: Kind::Dob, first, last });
            }
            break;
        }
    }
}

/// The codes words `t` spell, every reading of their spelled O's (at most 8).
fn readings(t: &[Tok]) -> Vec<String> {
    let mut out = vec![String::new()];
    for x in t {
        let Some(code) = x.code.as_deref() else { continue };
        match x.alt.as_deref() {
            Some(alt) if out.len() < 8 => {
                out = out.into_iter().flat_map(|s| [format!("{s}{code}"), format!("{s}{alt}")]).collect();
            }
            _ => out.iter_mut().for_each(|s| s.push_str(code)),
        }
    }
    out
}

/// Find the PII in `words` (one speaker's or one channel's words in order).
pub fn detect(words: &[&str], loc: Locales) -> Vec<Found> {
    let t = tokens(words);
    let mut found = Vec::new();
    addresses(&t, loc, &mut found);
    birth_dates(&t, &mut found);
    let taken = |f: &[Found], a: usize, b: usize| f.iter().any(|x| a <= x.last && x.first <= b);
    let n = t.len();
    let mut i = 0;
    while i < n {
        if t[i].code.is_none() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < n && t[j + 1].code.is_some() {
            j += 1;
        }
        // The run is t[i..=j]. Every word-aligned part, longest first.
        let len = j - i + 1;
        for size in (1..=len.min(32)).rev() {
            for a in i..=j + 1 - size {
                let b = a + size - 1;
                let empty = |k: usize| t[k].code.as_deref() == Some("");
                if empty(a) && !MULTIPLIERS.iter().any(|(m, _)| *m == t[a].lower)
                    || empty(b) && !t[b].unit
                    || taken(&found, a, b)
                {
                    continue;
                }
                let kind = readings(&t[a..=b]).into_iter().find_map(|s| {
                    if s.is_empty() || s.len() > 24 {
                        return None;
                    }
                    if s.bytes().all(|c| c.is_ascii_digit()) {
                        // Digits must be the whole stretch of digits they sit in: a
                        // near-miss never yields a match from part of itself.
                        let digit_word =
                            |k: usize| t[k].code.as_deref().is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()));
                        let whole = (a == i || !digit_word(a - 1)) && (b == j || !digit_word(b + 1));
                        whole.then(|| digits_kind(&t, a, b, &s, loc)).flatten()
                    } else {
                        let mixed = |k: usize| has_digits(&t[k]);
                        let whole = (a == i || !mixed(a - 1)) && (b == j || !mixed(b + 1));
                        whole.then(|| code_kind(&t, a, b, &s, loc)).flatten()
                    }
                });
                if let Some(kind) = kind {
                    found.push(Found { kind, first: a, last: b });
                }
            }
        }
        i = j + 1;
    }
    found.sort_by_key(|f| (f.first, f.last));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, String)> {
        let words: Vec<&str> = text.split_whitespace().collect();
        detect(&words, Locales::ALL).into_iter().map(|f| (f.kind, words[f.first..=f.last].join(" "))).collect()
    }

    #[test]
    fn spoken_and_written_numbers() {
        assert_eq!(kinds("call me on nine eight seven six five, four three two one zero please")[0].0, Kind::Phone);
        assert_eq!(
            kinds("it's double nine eight seven six five four three two one")[0].1,
            "double nine eight seven six five four three two one"
        );
        assert_eq!(kinds("my number is +91 98765 43210.")[0].0, Kind::Phone);
        assert_eq!(kinds("mobile oh seven seven double oh nine oh oh one two three")[0].0, Kind::Phone);
        assert_eq!(kinds("mera number nau aath saat chhe paanch chaar teen do ek shunya hai")[0].0, Kind::Phone);
        assert_eq!(kinds("नंबर ९८७६५४३२१० है")[0].0, Kind::Phone);
        assert!(kinds("the amount is twelve thousand five hundred rupees").is_empty());
        assert!(kinds("I paid 12,500 on the fifth").is_empty());
        assert!(kinds("oh I see, no problem").is_empty());
    }

    #[test]
    fn codes_and_context() {
        assert_eq!(kinds("PAN is A B C P E one two three four F")[0].0, Kind::Pan);
        assert_eq!(kinds("NI number AB 12 34 56 C thanks")[0].0, Kind::Nino);
        assert_eq!(kinds("postcode is SW1A 1AA")[0].1, "SW1A 1AA");
        assert!(kinds("the product code is SW1A 1AA").is_empty());
        assert_eq!(kinds("my pin is one two three four")[0].0, Kind::Pin);
        assert!(kinds("I have one two three four children").is_empty());
        assert_eq!(kinds("email me at ravi dot kumar at gmail dot com")[0].1, "ravi dot kumar at gmail dot com");
        assert_eq!(kinds("UPI is ravi.kumar@okaxis ok")[0].0, Kind::Upi);
        assert_eq!(
            kinds("I was born on the twelfth of March nineteen eighty five")[0].1,
            "twelfth of March nineteen eighty five"
        );
        assert!(kinds("the meeting is on the twelfth of March").is_empty());
        assert_eq!(kinds("expiry oh five slash twenty seven")[0].0, Kind::Expiry);
    }
}
