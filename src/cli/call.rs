//! `chunkring call`: pipe mode (layout.md §17). Parses the command line, gathers the body,
//! and hands the request to `chunkring::pipe::call`, the worker's own dispatcher.

use std::io::{IsTerminal, Read, Write};

use chunkring::error::ErrorCode;
use chunkring::ops::{decode_list, encode_list, Registry};
use chunkring::pipe;

use super::{Args, Failure};

pub const USAGE: &str = "\
usage: chunkring call OP [--params JSON | --params-file PATH] [--list] [--unlist] [FILE...]
       chunkring call --ops

Runs one op once through the worker's own op registry and dispatcher, without shared
memory (pipe mode, layout.md section 17): the same request payload a client puts in the
request ring, the same answer. The body is the FILEs' bytes (`-` is stdin), or stdin when
no FILE is given (an empty body when stdin is a terminal); several FILEs are concatenated,
like cat, unless --list. The answer's bytes go to stdout unchanged, unless --unlist.
Each call is a fresh worker: histories and logs last for one call (chain ops that need
them with the pipeline op).

  OP                  an op name (md.render, snap.push, pipeline, ...: see --ops) or
                      code (0x0101 or 257)
  --params JSON       the params, a JSON object (layout.md section 9); none means {}
  --params-file PATH  the params, read from a file
  --list              send the inputs in the list encoding (layout.md section 9.1), one
                      item per FILE (stdin is one item): the body md.render, md.outline
                      and snap.push_many take
  --unlist            read the answer as a list and write its items one after another
                      (md.render and md.aggregate answer lists)
  --ops               print every op's code and name, then exit

examples:
  chunkring call md.render --list --unlist README.md > README.html
  chunkring call md.outline --list notes.md
  echo hello | chunkring call echo
  chunkring call md.aggregate --unlist --params \\
      '{\"root\": \".\", \"toc\": true, \"files\": [{\"path\": \"README.md\", \"read\": true}]}'

exit status: 0 the answer is on stdout; 4 to 15 the op failed with that wire error code
(layout.md section 8: 5 unknown op, 6 bad params, 7 bad payload, 8 invalid UTF-8, 11 path
refused, 12 I/O, ...; a code above 124 exits 124), the message is on stderr; 1 a FILE
could not be read or stdout not written; 2 bad usage. Codes 1 to 3 are frame errors, which
pipe mode has no frames to raise, so they never collide.";

/// A parsed `chunkring call` command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct CallArgs {
    op: Option<String>,
    params: Vec<u8>,
    list: bool,
    unlist: bool,
    list_ops: bool,
    help: bool,
    files: Vec<String>,
}

fn parse(args: &[String]) -> Result<CallArgs, Failure> {
    let mut a = Args::new(args);
    let mut out = CallArgs::default();
    let mut only_files = false;
    while let Some(arg) = a.next() {
        match arg {
            _ if only_files => out.files.push(arg.to_owned()),
            "--" => only_files = true,
            "-h" | "--help" => out.help = true,
            "--ops" => out.list_ops = true,
            "--list" => out.list = true,
            "--unlist" => out.unlist = true,
            "--params" => out.params = a.value::<String>("--params")?.into_bytes(),
            "--params-file" => {
                let path: String = a.value("--params-file")?;
                out.params = std::fs::read(&path)
                    .map_err(|e| Failure::failed(format!("call: cannot read {path}: {e}")))?;
            }
            "-" => out.files.push(arg.to_owned()),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(Failure::unknown("call", "option", flag))
            }
            word if out.op.is_none() => out.op = Some(word.to_owned()),
            file => out.files.push(file.to_owned()),
        }
    }
    Ok(out)
}

pub fn run(args: &[String]) -> Result<(), Failure> {
    let args = parse(args)?;
    if args.help {
        println!("{USAGE}");
        return Ok(());
    }
    let registry = Registry::with_all_ops();
    if args.list_ops {
        for (name, code) in pipe::op_names(&registry) {
            println!("{code:#06x}  {name}");
        }
        return Ok(());
    }
    let op = args
        .op
        .as_deref()
        .ok_or_else(|| Failure::missing("call", "an OP: a name or a code"))?;
    let code = pipe::resolve_op(&registry, op).map_err(op_failure)?;
    let inputs = read_inputs(&args.files)?;
    let body = if args.list {
        encode_list(&inputs)
    } else {
        inputs.concat()
    };
    let answer = pipe::call(registry, code, &args.params, &body)
        .map_err(|e| op_failure(with_list_hint(e, args.list, &body)))?;
    let mut stdout = std::io::stdout().lock();
    let written = if args.unlist {
        let items = decode_list(&answer).map_err(|e| {
            Failure::failed(format!(
                "call: --unlist: the answer is not a list: {}",
                e.message
            ))
        })?;
        items.iter().try_for_each(|item| stdout.write_all(item))
    } else {
        stdout.write_all(&answer)
    };
    written
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::failed(format!("call: cannot write the answer: {e}")))
}

/// An op's error as a failure: `<code name> (<code>): <message>`, exiting with the code.
fn op_failure(e: chunkring::error::OpError) -> Failure {
    Failure {
        message: format!("call: {}: {}", e.code, e.message),
        status: pipe::exit_status(e.code),
    }
}

/// `e` with a hint to `--list` when the op read its body as a list (layout.md §9.1), the
/// body given without `--list` is not one, and the op failed on exactly that: the first
/// thing a user types, `chunkring call md.render README.md`, otherwise ends in "list of
/// 1768431651 items: lengths run past the body".
fn with_list_hint(
    mut e: chunkring::error::OpError,
    list: bool,
    body: &[u8],
) -> chunkring::error::OpError {
    let listed = decode_list(body).err().map(|d| d.message);
    if !list && e.code == ErrorCode::BadPayload && listed.as_ref() == Some(&e.message) {
        e.message.push_str(
            " (this op reads its body as a list: give --list to send each FILE, or stdin, \
             as one item, and --unlist to write the answer's items)",
        );
    }
    e
}

/// The bytes of each FILE (`-` is stdin); with none, stdin as the one input, or nothing
/// when stdin is a terminal (nobody is going to type a body).
fn read_inputs(files: &[String]) -> Result<Vec<Vec<u8>>, Failure> {
    if files.is_empty() {
        if std::io::stdin().is_terminal() {
            return Ok(vec![Vec::new()]);
        }
        return Ok(vec![read_stdin()?]);
    }
    files
        .iter()
        .map(|f| match f.as_str() {
            "-" => read_stdin(),
            path => std::fs::read(path)
                .map_err(|e| Failure::failed(format!("call: cannot read {path}: {e}"))),
        })
        .collect()
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| Failure::failed(format!("call: cannot read stdin: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(s: &str) -> Result<CallArgs, Failure> {
        parse(&crate::cli::words(s))
    }

    #[test]
    fn the_first_word_is_the_op_and_the_rest_are_files() {
        let a = parse_words("md.render --list a.md --unlist - b.md").unwrap();
        assert_eq!(a.op.as_deref(), Some("md.render"));
        assert!(a.list && a.unlist);
        assert_eq!(a.files, ["a.md", "-", "b.md"]);
    }

    #[test]
    fn params_are_kept_as_given_bytes() {
        let a = parse_words("echo --params {\"x\":1}").unwrap();
        assert_eq!(a.params, b"{\"x\":1}");
        assert_eq!(parse_words("echo --params").unwrap_err().status, 2);
    }

    #[test]
    fn after_a_double_dash_everything_is_a_file() {
        let a = parse_words("echo -- --list -x").unwrap();
        assert_eq!(
            (a.list, a.files.as_slice()),
            (false, &["--list".to_owned(), "-x".to_owned()][..])
        );
    }

    #[test]
    fn unknown_options_are_usage_errors() {
        let e = parse_words("echo --bogus").unwrap_err();
        assert_eq!(e.status, 2);
        assert!(e.message.contains("\"--bogus\""), "{}", e.message);
    }

    #[test]
    fn a_missing_params_file_is_a_failure_not_a_usage_error() {
        let e = parse_words("echo --params-file /nonexistent/params.json").unwrap_err();
        assert_eq!(e.status, 1);
    }

    #[test]
    fn a_list_op_given_a_plain_body_is_told_about_list() {
        let registry = Registry::with_all_ops();
        let code = pipe::resolve_op(&registry, "md.render").unwrap();
        let body = b"# hi\n";
        let e = pipe::call(registry, code, b"", body).unwrap_err();
        let hinted = with_list_hint(e.clone(), false, body);
        assert!(hinted.message.contains("give --list"), "{}", hinted.message);
        assert!(hinted.message.starts_with(&e.message), "{}", hinted.message);
        assert_eq!(with_list_hint(e.clone(), true, body).message, e.message);
        // Another bad payload (not the list decoding's) gets no hint.
        let other = chunkring::error::OpError::bad_payload("snapshot must be an object");
        assert_eq!(
            with_list_hint(other.clone(), false, body).message,
            other.message
        );
    }

    #[test]
    fn op_errors_exit_with_their_wire_code() {
        let f = op_failure(pipe::resolve_op(&Registry::with_all_ops(), "nope").unwrap_err());
        assert_eq!(f.status, 5);
        assert!(
            f.message
                .starts_with("call: unknown op (5): unknown op \"nope\""),
            "{}",
            f.message
        );
    }
}
