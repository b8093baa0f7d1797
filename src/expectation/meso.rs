//! Meso amounts as Korean text: `12조 3456억 7890만` (조 = 10¹², 억 = 10⁸, 만 = 10⁴).
//!
//! Contract: [`meso_text`] is total over `u64`. Amounts below 10,000 are the plain number (`"9999"`, `"0"`).
//! Above, each unit with a non-zero count is written as `<count><unit>`, largest first, separated by single
//! spaces; a non-zero remainder below 10,000 follows as a plain number (`"1억 5"`). Counts are not zero-padded and
//! the 조 count may have more than four digits (there is no larger unit).
//!
//! Why: this is how players read meso, and the text is what a client shows next to the integer.

/// Formats a meso amount; see the module contract.
pub fn meso_text(meso: u64) -> String {
    if meso < 10_000 {
        return meso.to_string();
    }
    let jo = meso / 1_000_000_000_000;
    let eok = meso / 100_000_000 % 10_000;
    let man = meso / 10_000 % 10_000;
    let rest = meso % 10_000;
    let mut parts: Vec<String> = Vec::with_capacity(4);
    if jo > 0 {
        parts.push(format!("{jo}조"));
    }
    if eok > 0 {
        parts.push(format!("{eok}억"));
    }
    if man > 0 {
        parts.push(format!("{man}만"));
    }
    if rest > 0 {
        parts.push(rest.to_string());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_examples() {
        assert_eq!(meso_text(12_3456_7890_0000), "12조 3456억 7890만");
        assert_eq!(meso_text(0), "0");
        assert_eq!(meso_text(9_999), "9999");
        assert_eq!(meso_text(10_000), "1만");
        assert_eq!(meso_text(1_0000_0005), "1억 5");
        assert_eq!(meso_text(364_0472_1571), "364억 472만 1571");
        assert_eq!(meso_text(1_0000_0000_0000), "1조");
        assert_eq!(meso_text(u64::MAX), "18446744조 737억 955만 1615");
    }

    fn unit(s: &str) -> u64 {
        match s {
            "조" => 1_000_000_000_000,
            "억" => 100_000_000,
            "만" => 10_000,
            _ => 1,
        }
    }

    proptest! {
        #[test]
        fn text_reads_back_to_the_number(m in any::<u64>()) {
            let text = meso_text(m);
            let mut total: u64 = 0;
            for part in text.split(' ') {
                let digits: String = part.chars().filter(char::is_ascii_digit).collect();
                let suffix: String = part.chars().filter(|c| !c.is_ascii_digit()).collect();
                total += digits.parse::<u64>().unwrap() * unit(&suffix);
            }
            prop_assert_eq!(total, m);
        }
    }
}
