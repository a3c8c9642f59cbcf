//! Output files that appear only when complete (`read --output FILE`, `export IMAGE FILE`).
//!
//! Data goes to a temporary file beside the target (same directory, so the final rename
//! cannot cross file systems); only a successful command moves it into place. A failed or
//! interrupted command leaves no file that looks like output, and an existing file untouched.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{io_err, CmdResult};

/// Whether [`OutputFile::commit`] may replace an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (`read --output`, as shell redirection would).
    Replace,
    /// Refuse with EEXIST (`export`, as `rbd export`).
    Refuse,
}

/// A temporary file that becomes `target` on [`commit`](OutputFile::commit) and is removed
/// if dropped before.
#[derive(Debug)]
pub struct OutputFile {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    existing: Existing,
    committed: bool,
}

impl OutputFile {
    /// Creates the temporary file for `target`. With [`Existing::Refuse`], an existing target
    /// fails here already, before any data is read.
    pub fn create(target: &Path, existing: Existing) -> CmdResult<OutputFile> {
        let name = target.display();
        if existing == Existing::Refuse && fs::symlink_metadata(target).is_ok() {
            return Err(io_err(io::Error::from_raw_os_error(libc::EEXIST), format_args!("create {name}")));
        }
        let tmp = tmp_path(target);
        let file =
            OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| io_err(e, format_args!("create {name} (temporary {})", tmp.display())))?;
        Ok(OutputFile { file, tmp, target: target.to_path_buf(), existing, committed: false })
    }

    /// The temporary file, to write the data into.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Flushes the data to disk and moves it to the target.
    pub fn commit(mut self) -> CmdResult {
        let name = self.target.display().to_string();
        self.file.sync_all().map_err(|e| io_err(e, format_args!("sync {name}")))?;
        match self.existing {
            Existing::Replace => fs::rename(&self.tmp, &self.target).map_err(|e| io_err(e, format_args!("rename to {name}")))?,
            Existing::Refuse => {
                // A hard link fails if the target appeared meanwhile: never overwrite.
                fs::hard_link(&self.tmp, &self.target).map_err(|e| io_err(e, format_args!("create {name}")))?;
                let _ = fs::remove_file(&self.tmp);
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `dir/.name.rbd-ext-<pid>.tmp`: hidden, beside the target, unique to this process.
fn tmp_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    target.with_file_name(format!(".{name}.rbd-ext-{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rbd-ext-output-{tag}-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn only_a_commit_makes_the_target() {
        use std::io::Write;
        let d = dir("commit");
        let t = d.join("out.raw");
        fs::write(&t, b"old").unwrap();
        let o = OutputFile::create(&t, Existing::Replace).unwrap();
        (&*o.file()).write_all(b"new").unwrap();
        drop(o);
        assert_eq!(fs::read(&t).unwrap(), b"old", "a dropped output leaves the existing file");
        assert_eq!(entries(&d), ["out.raw"], "and no temporary file");
        let o = OutputFile::create(&t, Existing::Replace).unwrap();
        (&*o.file()).write_all(b"new").unwrap();
        o.commit().unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"new");
        assert_eq!(entries(&d), ["out.raw"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuse_never_overwrites() {
        let d = dir("refuse");
        let t = d.join("x");
        fs::write(&t, b"keep").unwrap();
        let e = OutputFile::create(&t, Existing::Refuse).unwrap_err();
        assert!(e.to_string().contains("EEXIST"), "{e}");
        fs::remove_file(&t).unwrap();
        let o = OutputFile::create(&t, Existing::Refuse).unwrap();
        fs::write(&t, b"appeared").unwrap();
        assert!(o.commit().unwrap_err().to_string().contains("EEXIST"));
        assert_eq!(fs::read(&t).unwrap(), b"appeared");
        assert_eq!(entries(&d), ["x"]);
        fs::remove_dir_all(&d).unwrap();
    }
}
