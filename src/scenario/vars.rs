//! The values `{{var}}` placeholders draw from: `vars:` lists written in the scenario, or a
//! `vars_file:` table (CSV with a header row, or JSON lines) read with the scenario, bounded.

use std::collections::BTreeMap;
use std::path::Path;

use super::model::{Vars, is_var_byte};
use super::read::{Cx, file_bounded, index, join, mapping, string, text};
use super::tree::{Node, Origin, Value};

/// The most a data file may hold.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// The most rows a data file may hold.
const MAX_ROWS: usize = 1_000_000;

/// Each declared variable: where its key was written, its name and its key path.
pub(super) type Declared = Vec<(Origin, String, String)>;

/// `vars:`: each entry a non-empty list of scalars.
pub(super) fn vars(cx: &mut Cx, node: &Node, path: &str) -> Option<(Vars, Declared)> {
    let fields = mapping(cx, node, path, None)?;
    let before = cx.problems.len();
    let mut lists = BTreeMap::new();
    let mut declared = Vec::new();
    for &(key_node, var, value) in &fields.entries {
        let var_path = join(path, var);
        if !var.bytes().all(is_var_byte) {
            cx.err(
                key_node.origin,
                &var_path,
                "expected a name matching [A-Za-z0-9_]+",
            );
            continue;
        }
        let values: Vec<String> = match &value.value {
            Value::Seq(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| text(cx, item, &index(&var_path, i)))
                .collect(),
            _ => {
                cx.expected::<()>(value, &var_path, "a non-empty sequence of strings");
                continue;
            }
        };
        declared.push((key_node.origin, var.to_owned(), var_path));
        lists.insert(var.to_owned(), values);
    }
    (cx.problems.len() == before).then_some((Vars::Lists(lists), declared))
}

/// `vars_file:`: a path relative to the scenario file. Columns nothing uses are allowed.
pub(super) fn vars_file(cx: &mut Cx, node: &Node, path: &str) -> Option<(Vars, Declared)> {
    let name = string(cx, node, path)?;
    let file = cx.relative(&name);
    let table = read_table(&file).map_err(|problem| {
        cx.err(node.origin, path, format!("{}: {problem}", file.display()));
    });
    let (columns, rows) = table.ok()?;
    if let Some(bad) = columns.iter().find(|c| !c.bytes().all(is_var_byte)) {
        cx.err(
            node.origin,
            path,
            format!(
                "{}: column {bad:?}: expected a name matching [A-Za-z0-9_]+",
                file.display()
            ),
        );
        return None;
    }
    Some((Vars::Rows { columns, rows }, Vec::new()))
}

/// Header and rows of a CSV or JSON-lines file, or what is wrong with it (with its line).
fn read_table(file: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let bytes = file_bounded(file, MAX_FILE_BYTES)?;
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let (columns, rows) = match extension {
        "csv" => csv_table(&bytes)?,
        "jsonl" | "ndjson" => json_lines(&bytes)?,
        _ => return Err("expected a .csv, .jsonl or .ndjson file".to_owned()),
    };
    if rows.is_empty() {
        return Err("no rows".to_owned());
    }
    Ok((columns, rows))
}

fn csv_table(bytes: &[u8]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|c| c.trim().to_owned())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        if rows.len() == MAX_ROWS {
            return Err(format!("more than {MAX_ROWS} rows"));
        }
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok((columns, rows))
}

fn json_lines(bytes: &[u8]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| format!("line {line_no}: expected a JSON object: {e}"))?;
        let keys: Vec<String> = object.keys().cloned().collect();
        let columns = columns.get_or_insert_with(|| keys.clone());
        if *columns != keys {
            return Err(format!(
                "line {line_no}: expected the keys of line 1 ({}), got {}",
                columns.join(", "),
                keys.join(", ")
            ));
        }
        if rows.len() == MAX_ROWS {
            return Err(format!("more than {MAX_ROWS} rows"));
        }
        let row = object
            .into_iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(s) => Ok(s),
                serde_json::Value::Null => Ok(String::new()),
                v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                    Ok(v.to_string())
                }
                _ => Err(format!(
                    "line {line_no}: {key}: expected a string, number or boolean"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok((columns.unwrap_or_default(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_follow_the_header() {
        let (columns, rows) = csv_table(b"symbol,venue\nAAPL,X\nMSFT,Y\n").expect("valid");
        assert_eq!(columns, ["symbol", "venue"]);
        assert_eq!(rows, [["AAPL", "X"], ["MSFT", "Y"]]);
        let error = csv_table(b"symbol,venue\nAAPL\n").expect_err("short row");
        assert!(error.contains("line: 2"), "{error}");
    }

    #[test]
    fn json_lines_need_the_same_keys_on_every_line() {
        let (columns, rows) =
            json_lines(b"{\"symbol\":\"AAPL\",\"n\":1}\n\n{\"symbol\":\"MSFT\",\"n\":2}\n")
                .expect("valid");
        assert_eq!(columns, ["n", "symbol"]);
        assert_eq!(rows, [["1", "AAPL"], ["2", "MSFT"]]);
        let error = json_lines(b"{\"symbol\":\"AAPL\"}\n{\"sym\":\"MSFT\"}\n").expect_err("keys");
        assert!(
            error.starts_with("line 2: expected the keys of line 1"),
            "{error}"
        );
        let error = json_lines(b"{\"symbol\":[1]}\n").expect_err("nested");
        assert!(error.contains("symbol: expected a string"), "{error}");
    }
}
