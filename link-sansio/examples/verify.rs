//! Checks link frames, one JSON text per line on stdin, and prints one line per frame:
//! `ok` when the signature and envelope verify, otherwise the drop reason
//! (`parse-error`, `bad-signature`, `bad-version`, …). With `--canonical`, `ok` is
//! followed by a tab and the exact canonical text that was signed — compare it with
//! what the other side signed to find why two implementations disagree. No replay
//! window is applied: frames under inspection are usually old. Blank lines are skipped.
//!
//! ```text
//! cargo run -p link-sansio --example verify -- --secret S [--algo sha256] [--canonical] < frames.jsonl
//! ```

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use link_sansio::wire::{self, HashAlgo, Key, Limits};

const USAGE: &str =
    "usage: verify --secret SECRET [--algo sha256|sha384|sha512] [--canonical] < frames";

struct Args {
    secret: String,
    algo: HashAlgo,
    canonical: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut secret = None;
    let mut algo = HashAlgo::default();
    let mut canonical = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secret" => secret = Some(args.next().ok_or("--secret needs a value")?),
            "--algo" => {
                let name = args.next().ok_or("--algo needs a value")?;
                algo = name.parse().map_err(|e| format!("{e}"))?;
            }
            "--canonical" => canonical = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let secret = secret.ok_or("--secret is required")?;
    Ok(Args {
        secret,
        algo,
        canonical,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("verify: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let key = Key::new(&args.secret, args.algo);
    let limits = Limits::default();
    let stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    // Lines are read as bytes: a frame that is not UTF-8 is a parse error to report,
    // not a reason to stop.
    for line in stdin.split(b'\n') {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("verify: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        let frame = line.strip_suffix(b"\r").unwrap_or(&line);
        if frame.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let written = match wire::inspect(frame, &key, &limits) {
            Ok(canonical) if args.canonical => {
                // Canonical text is always UTF-8 without raw tabs or newlines.
                stdout
                    .write_all(b"ok\t")
                    .and_then(|()| stdout.write_all(&canonical))
                    .and_then(|()| stdout.write_all(b"\n"))
            }
            Ok(_) => stdout.write_all(b"ok\n"),
            Err(reason) => writeln!(stdout, "{}", reason.as_str()),
        };
        if written.is_err() {
            // The reader went away (e.g. `| head`): nothing more to say.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}
