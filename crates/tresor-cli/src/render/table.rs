//! Text tables whose columns are as wide as their widest cell (long host names and tags do not
//! push the rest of a row out of line).

/// Columns separated by two spaces, each padded to its widest cell (header included), the last
/// one not padded; trailing spaces removed. Widths are terminal columns (Unicode East Asian
/// Width, UAX #11, by the `unicode-width` crate: `日本` takes four); cells are escaped text
/// ([`super::escape_controls`]), so nothing in them moves the cursor.
pub fn lines(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            let pad = w.saturating_sub(cell.width());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.truncate(out.trim_end().len());
        out
    };
    let mut out = vec![line(&mut header.iter().copied())];
    out.extend(rows.iter().map(|r| line(&mut r.iter().map(String::as_str))));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn widths_fit_the_widest_cell() {
        let rows = vec![
            vec!["1".to_string(), "a-very-long-host-name".into(), "x".into()],
            vec!["22".to_string(), "h".into(), "".into()],
        ];
        assert_eq!(
            super::lines(&["ID", "Host", "Tags"], &rows),
            [
                "ID  Host                   Tags",
                "1   a-very-long-host-name  x",
                "22  h",
            ]
        );
        // Wide characters take two columns: the next column stays in line.
        let rows = vec![
            vec!["日本語ホスト".to_string(), "x".into()],
            vec!["müller".to_string(), "y".into()],
        ];
        assert_eq!(
            super::lines(&["Host", "Tags"], &rows),
            ["Host          Tags", "日本語ホスト  x", "müller        y"]
        );
    }
}
