//! Reading a file named from outside (a scenario, its vars and proto files, a PEM, a stored
//! `result.json`, a sign-off suite) without trusting it: a regular file only, and at most a bound.

use std::io::{Error, ErrorKind, Read as _};
use std::path::Path;

/// At most `max` bytes of a regular file. Anything else is refused before it is opened: a
/// device such as `/dev/zero` would never end, and opening a FIFO blocks until someone writes it.
/// A larger file is an error of kind [`ErrorKind::FileTooLarge`].
pub(crate) fn read_regular(file: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(file)?.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a directory, device or FIFO)",
        ));
    }
    let handle = std::fs::File::open(file)?;
    let mut bytes = Vec::new();
    handle.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::FileTooLarge,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub(crate) fn read_text(file: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(file, max)?)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_directory_is_refused_before_it_is_read() {
        for path in ["/dev/zero", "/tmp"] {
            let error = read_regular(Path::new(path), 10).expect_err(path);
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{path}");
        }
    }

    #[test]
    fn a_file_over_the_bound_is_refused_and_one_at_it_is_read() {
        let dir = std::env::temp_dir().join(format!("harness-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("ten");
        std::fs::write(&file, "0123456789").expect("write");
        assert_eq!(read_text(&file, 10).expect("at the bound"), "0123456789");
        let error = read_regular(&file, 9).expect_err("over the bound");
        assert_eq!(error.kind(), ErrorKind::FileTooLarge);
        assert_eq!(error.to_string(), "larger than 9 bytes");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
