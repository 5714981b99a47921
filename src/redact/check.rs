//! Check digits and official formats of the identifiers we redact: a pattern
//! alone would redact every order number, so each entity with a published
//! check is validated with it.

/// Verhoeff check (Aadhaar): the whole number, check digit included, is valid.
pub fn verhoeff(digits: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 8, 7, 6, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut c = 0u8;
    for (i, b) in digits.bytes().rev().enumerate() {
        c = D[c as usize][P[i % 8][(b - b'0') as usize] as usize];
    }
    c == 0
}

/// The Verhoeff check digit to append to `digits` (for test data).
pub fn verhoeff_digit(digits: &str) -> char {
    (0..10u8).map(|d| (b'0' + d) as char).find(|&d| verhoeff(&format!("{digits}{d}"))).unwrap_or('0')
}

/// Luhn check (payment cards).
pub fn luhn(digits: &str) -> bool {
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32;
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The Luhn check digit to append to `digits` (for test data).
pub fn luhn_digit(digits: &str) -> char {
    (0..10u8).map(|d| (b'0' + d) as char).find(|&d| luhn(&format!("{digits}{d}"))).unwrap_or('0')
}

/// NHS number: 10 digits, modulus 11 with weights 10…2 on the first nine.
pub fn nhs(digits: &str) -> bool {
    let b = digits.as_bytes();
    if b.len() != 10 || !b.iter().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = b[..9].iter().enumerate().map(|(i, c)| (c - b'0') as u32 * (10 - i as u32)).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == (b[9] - b'0') as u32
}

/// The NHS check digit for nine digits, if they have one (for test data).
pub fn nhs_digit(nine: &str) -> Option<char> {
    (0..10u8).map(|d| (b'0' + d) as char).find(|&d| nhs(&format!("{nine}{d}")))
}

/// `s` has `shape`: `L` a letter A–Z, `D` a digit, `A` either; anything else literal.
pub fn shape(s: &str, shape: &str) -> bool {
    s.len() == shape.len()
        && s.bytes().zip(shape.bytes()).all(|(c, p)| match p {
            b'L' => c.is_ascii_uppercase(),
            b'D' => c.is_ascii_digit(),
            b'A' => c.is_ascii_uppercase() || c.is_ascii_digit(),
            _ => c == p,
        })
}

/// Permanent Account Number: `AAAPL1234C`, the fourth letter the holder's type.
pub fn pan(s: &str) -> bool {
    shape(s, "LLLLLDDDDL") && b"ABCFGHLJPTK".contains(&s.as_bytes()[3])
}

/// UK National Insurance number: two prefix letters from the allowed set, six
/// digits, and the suffix A–D (said or not).
pub fn nino(s: &str) -> bool {
    let core = match s.len() {
        9 if b"ABCD".contains(&s.as_bytes()[8]) => &s[..8],
        8 => s,
        _ => return false,
    };
    if !shape(core, "LLDDDDDD") {
        return false;
    }
    let (a, b) = (core.as_bytes()[0], core.as_bytes()[1]);
    !b"DFIQUV".contains(&a)
        && !b"DFIOQUV".contains(&b)
        && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&&core[..2])
}

/// UK postcode in the official format (outward code, then `9AA`), without its space.
pub fn postcode(s: &str) -> bool {
    if s == "GIR0AA" {
        return true;
    }
    if s.len() < 5 || s.len() > 7 {
        return false;
    }
    let (out, inward) = s.split_at(s.len() - 3);
    let ib = inward.as_bytes();
    if !shape(inward, "DLL") || b"CIKMOV".contains(&ib[1]) || b"CIKMOV".contains(&ib[2]) {
        return false;
    }
    let ob = out.as_bytes();
    if b"QVX".contains(&ob[0]) {
        return false;
    }
    let second_ok = |c: u8| !b"IJZ".contains(&c);
    match out.len() {
        2 => shape(out, "LD"),
        3 => shape(out, "LDD") || (shape(out, "LLD") && second_ok(ob[1])) || shape(out, "LDL"),
        4 => (shape(out, "LLDD") || shape(out, "LLDL")) && second_ok(ob[1]),
        _ => false,
    }
}

/// IFSC: four letters (the bank), a zero, six letters or digits (the branch).
pub fn ifsc(s: &str) -> bool {
    shape(s, "LLLL0AAAAAA")
}

/// GSTIN: state code, the holder's PAN, entity number, `Z`, check character (mod 36).
pub fn gstin(s: &str) -> bool {
    if s.len() != 15 || !shape(&s[..2], "DD") || !pan(&s[2..12]) || !shape(&s[12..], "AZA") {
        return false;
    }
    let state: u32 = s[..2].parse().unwrap_or(0);
    if !(1..=38).contains(&state) && state != 97 && state != 99 {
        return false;
    }
    gstin_check(&s[..14]) == s.as_bytes()[14] as char
}

/// The GSTIN check character of its first 14 characters.
pub fn gstin_check(first14: &str) -> char {
    const SET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let sum: u32 = first14
        .bytes()
        .enumerate()
        .map(|(i, c)| {
            let v = SET.iter().position(|&x| x == c).unwrap_or(0) as u32;
            let p = v * if i % 2 == 1 { 2 } else { 1 };
            p / 36 + p % 36
        })
        .sum();
    SET[((36 - sum % 36) % 36) as usize] as char
}

/// Indian state and union-territory codes on vehicle registration plates.
const RTO_STATES: &[&str] = &[
    "AN", "AP", "AR", "AS", "BR", "CG", "CH", "DD", "DL", "DN", "GA", "GJ", "HP", "HR", "JH", "JK", "KA", "KL", "LA",
    "LD", "MH", "ML", "MN", "MP", "MZ", "NL", "OD", "OR", "PB", "PY", "RJ", "SK", "TN", "TR", "TS", "UK", "UP", "WB",
];

/// Indian vehicle registration: state, district (1–2 digits), series (0–3
/// letters), number (4 digits): `MH12AB1234`, `DL3CAB1234`.
pub fn vehicle(s: &str) -> bool {
    if s.len() < 7 || s.len() > 11 || !RTO_STATES.contains(&s.get(..2).unwrap_or("")) {
        return false;
    }
    let rest = &s.as_bytes()[2..];
    let lead = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if lead == rest.len() {
        // No series letters: district (1–2 digits) and the 4-digit number.
        return (5..=6).contains(&lead);
    }
    if !(1..=2).contains(&lead) {
        return false;
    }
    let rest = &rest[lead..];
    let series = rest.iter().take_while(|c| c.is_ascii_uppercase()).count();
    (1..=3).contains(&series) && rest.len() - series == 4 && rest[series..].iter().all(|c| c.is_ascii_digit())
}

/// Indian voter ID (EPIC): three letters, seven digits.
pub fn voter_id(s: &str) -> bool {
    shape(s, "LLLDDDDDDD")
}

/// A calendar date, for dates of birth and expiry dates.
pub fn valid_date(day: u32, month: u32, year: i32) -> bool {
    chrono::NaiveDate::from_ymd_opt(year, month, day).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        // Published test numbers.
        assert!(verhoeff("2363"));
        assert!(!verhoeff("2364"));
        assert!(verhoeff(&format!("23456789012{}", verhoeff_digit("23456789012"))));
        assert!(luhn("4111111111111111"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4111111111111112"));
        assert!(nhs("9434765919"));
        assert!(!nhs("9434765918"));
        assert_eq!(luhn_digit("411111111111111"), '1');
    }

    #[test]
    fn formats() {
        assert!(pan("ABCPE1234F"));
        assert!(!pan("ABCXE1234F"));
        assert!(nino("AB123456C") && nino("JG103759A") && nino("AB123456"));
        assert!(!nino("GB123456A") && !nino("DA123456A") && !nino("AB123456E"));
        for p in ["SW1A1AA", "M11AE", "B338TH", "CR26XH", "DN551PT", "EC1A1BB", "W1A0AX"] {
            assert!(postcode(p), "{p}");
        }
        for p in ["SW1A1AC", "QA11AA", "AB1", "123456", "SW1A1AA9"] {
            assert!(!postcode(p), "{p}");
        }
        assert!(ifsc("SBIN0001234") && !ifsc("SBIN1001234"));
        let g = format!("27ABCPE1234F1Z{}", gstin_check("27ABCPE1234F1Z"));
        assert!(gstin(&g), "{g}");
        assert!(!gstin("27ABCPE1234F1Z0") || gstin_check("27ABCPE1234F1Z") == '0');
        assert!(vehicle("MH12AB1234") && vehicle("DL3CAB1234") && vehicle("KA011234"));
        assert!(!vehicle("XX12AB1234") && !vehicle("MH12ABCD1234"));
        assert!(voter_id("ABC1234567"));
    }
}
