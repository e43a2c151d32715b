//! The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile
//! collector and the pushgateway read): writing it with its escaping rules, and reading back a
//! file this module wrote (or a person edited) so that a new run can merge into it.
//!
//! Escaping: in label values `\` → `\\`, `"` → `\"`, line feed → `\n`; in HELP texts `\` → `\\`
//! and line feed → `\n`. Nothing else needs escaping, so any host name or path is written as a
//! valid label value.

use std::collections::BTreeMap;

/// Label names and values of one sample, in order.
pub type Labels = Vec<(String, String)>;

/// One sample line: the metric name (a family's name, or its name with a suffix such as
/// `_bucket` for foreign histograms), its labels and its value as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// The value as it appears in the file (`1765000000.5`, `NaN`, `+Inf`).
    pub value: String,
}

/// A metric family: its HELP text, its TYPE and its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    /// The HELP text (unescaped).
    pub help: String,
    /// The TYPE (`gauge`, `counter`, `untyped`, …).
    pub kind: String,
    /// The samples, in file order.
    pub samples: Vec<Sample>,
}

/// The families of a file by name.
pub type Families = BTreeMap<String, Family>;

/// A label value escaped for the text format.
pub fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text of `families`: for each (by name) its HELP and TYPE lines, then its samples.
pub fn render(families: &Families) -> String {
    let mut out = String::new();
    for (name, f) in families {
        let help = f.help.replace('\\', "\\\\").replace('\n', "\\n");
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {}\n", f.kind));
        for s in &f.samples {
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                let pairs: Vec<String> = (s.labels.iter())
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
                    .collect();
                out.push_str(&format!("{{{}}}", pairs.join(",")));
            }
            out.push_str(&format!(" {}\n", s.value));
        }
    }
    out
}

/// Read `text` back into families. A sample belongs to the family of the HELP or TYPE line
/// before it when its name starts with that family's name, else to a family of its own name.
///
/// # Errors
/// `line N: what` for the first line that is not in the format.
pub fn parse(text: &str) -> Result<Families, String> {
    let mut families = Families::new();
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let at = |e: &str| format!("line {}: {e}", i + 1);
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.trim_start().splitn(3, ' ');
            let (kind, name, tail) = (words.next(), words.next(), words.next().unwrap_or(""));
            let (Some(kind @ ("HELP" | "TYPE")), Some(name)) = (kind, name) else {
                continue; // a comment
            };
            current = name.to_string();
            let f = families.entry(current.clone()).or_default();
            match kind {
                "HELP" => f.help = unescape(tail, false).map_err(|e| at(&e))?,
                _ => f.kind = tail.trim().to_string(),
            }
        } else if !line.is_empty() {
            let s = sample(line).map_err(|e| at(&e))?;
            let family = if !current.is_empty() && s.name.starts_with(&current) {
                current.clone()
            } else {
                s.name.clone()
            };
            let f = families.entry(family).or_insert_with(|| Family {
                kind: "untyped".into(),
                ..Family::default()
            });
            f.samples.push(s);
        }
    }
    Ok(families)
}

/// One sample line: `name{l="v",…} value [timestamp]`.
fn sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_:".contains(c))
    {
        return Err(format!("not a metric name: {name:?}"));
    }
    let mut rest = &line[end..];
    let mut labels = Labels::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = label_pairs(r, &mut labels)?;
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    if value.parse::<f64>().is_err() && !["NaN", "+Inf", "-Inf"].contains(&value) {
        return Err(format!("not a value: {value:?}"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value: value.to_string(),
    })
}

/// The pairs after `{` up to `}`; what follows the `}`.
fn label_pairs<'a>(mut r: &'a str, labels: &mut Labels) -> Result<&'a str, String> {
    loop {
        r = r.trim_start();
        if let Some(after) = r.strip_prefix('}') {
            return Ok(after);
        }
        let eq = r.find('=').ok_or("a label without `=`")?;
        let key = r[..eq].trim().to_string();
        r = r[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("a label value without `\"`")?;
        let close = closing_quote(r).ok_or("a label value without its closing `\"`")?;
        labels.push((key, unescape(&r[..close], true)?));
        r = r[close + 1..].trim_start();
        r = r.strip_prefix(',').unwrap_or(r);
    }
}

/// The index of the first `"` in `s` not escaped by a backslash.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match (c, escaped) {
            ('"', false) => return Some(i),
            ('\\', false) => escaped = true,
            _ => escaped = false,
        }
    }
    None
}

/// Undo the escaping (`quote`: `\"` too, in label values).
fn unescape(s: &str, quote: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            other => return Err(format!("a bad escape `\\{}`", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_label_values_survive_a_round_trip() {
        let host = "a\"b\\c\nd} e=\"x\",";
        let mut families = Families::new();
        families.insert(
            "tresor_x".into(),
            Family {
                help: "with \\ and\nnewline".into(),
                kind: "gauge".into(),
                samples: vec![Sample {
                    name: "tresor_x".into(),
                    labels: vec![("host".into(), host.into()), ("p".into(), String::new())],
                    value: "1.5".into(),
                }],
            },
        );
        let text = render(&families);
        assert_eq!(
            text,
            "# HELP tresor_x with \\\\ and\\nnewline\n# TYPE tresor_x gauge\n\
             tresor_x{host=\"a\\\"b\\\\c\\nd} e=\\\"x\\\",\",p=\"\"} 1.5\n"
        );
        assert_eq!(parse(&text).unwrap(), families);
    }

    #[test]
    fn foreign_lines_are_kept_and_bad_ones_named() {
        let text =
            "# a comment\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3 1700\nh_sum 2\nother 1\n";
        let f = parse(text).unwrap();
        assert_eq!(f["h"].samples.len(), 2);
        assert_eq!(f["other"].samples[0].value, "1");
        assert_eq!(
            parse("x{a=\"b} 1").unwrap_err(),
            "line 1: a label value without its closing `\"`"
        );
        assert_eq!(
            parse("ok 1\nx y").unwrap_err(),
            "line 2: not a value: \"y\""
        );
    }
}
