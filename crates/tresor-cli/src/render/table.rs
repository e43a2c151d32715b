//! Text tables whose columns are as wide as their widest cell (long host names and tags do not
//! push the rest of a row out of line).

/// Columns separated by two spaces, each padded to its widest cell (header included), the last
/// one not padded; trailing spaces removed. Widths count characters: cells are escaped text
/// ([`super::escape_controls`]), so nothing in them moves the cursor.
pub fn lines(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
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
    }
}
