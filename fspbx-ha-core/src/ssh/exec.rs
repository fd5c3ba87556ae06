//! Running commands on a node: one session channel per command.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig, client};

use crate::Error;
use crate::ssh::SshSession;

/// What a remote command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status, if the command exited normally.
    pub exit_status: Option<u32>,
    /// Signal name without `SIG` (e.g. `KILL`), if the command's shell was killed by a signal.
    /// (A program the shell ran that dies by a signal shows, as in any shell, as exit status
    /// 128 + the signal number.)
    pub exit_signal: Option<String>,
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// The command exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_status == Some(0)
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// `exit status 3`, `signal KILL` or `no exit status`.
    pub fn status_text(&self) -> String {
        match (&self.exit_status, &self.exit_signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(sig)) => format!("signal {sig}"),
            (None, None) => "no exit status".to_string(),
        }
    }
}

/// How much longer than the client's timeout the node itself lets a command run, so the
/// client reports the timeout first and the node then stops the command.
const REMOTE_GRACE: Duration = Duration::from_secs(2);
/// After the node's own limit, SIGTERM; this much later, SIGKILL.
const REMOTE_KILL_AFTER: Duration = Duration::from_secs(5);

/// The command as sent: `/bin/sh -c COMMAND` under coreutils `timeout`, so the node stops it
/// (TERM to its process group, then KILL) even when the client gave up or the connection is
/// gone. OpenSSH ignores "signal" channel requests for root logins ("session signalling
/// requires privilege separation"), so a signal from the client cannot do this.
///
/// `/bin/sh` rather than the login shell again: the login shell (which sshd always starts
/// first) already read its startup files and exported the environment; a second bash would
/// read `~/.bashrc` again (bash does so whenever `SSH_CLIENT` is set), which costs time on
/// every command.
pub(crate) fn bounded_command(command: &str, limit: Duration) -> String {
    let secs = limit.saturating_add(REMOTE_GRACE).as_secs_f64().ceil() as u64;
    format!(
        "timeout -k {}s {secs}s /bin/sh -c {}",
        REMOTE_KILL_AFTER.as_secs(),
        shell_quote(command)
    )
}

/// POSIX single-quoting: `it's` becomes `'it'\''s'`.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Most of a command that goes into an error message or log line.
const COMMAND_SHOWN: usize = 120;
/// Most of stderr that goes into [`Error::SshCommandFailed`].
const STDERR_SHOWN: usize = 800;

/// The command on one line, shortened for messages.
pub(crate) fn short_command(command: &str) -> String {
    let one_line: String = command.split_whitespace().collect::<Vec<_>>().join(" ");
    shorten(&one_line, COMMAND_SHOWN, false)
}

/// At most `max` characters of `text`: its start (`tail == false`) or its end.
fn shorten(text: &str, max: usize, tail: bool) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    if tail {
        let skip = count - max;
        format!("…{}", text.chars().skip(skip).collect::<String>())
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

fn signal_name(sig: &Sig) -> String {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name.as_str(),
    }
    .to_string()
}

impl SshSession {
    /// Runs `command` on the node with the target's command timeout. stdin is closed at once.
    /// A non-zero exit is *not* an error here: look at [`ExecOutput::exit_status`], or use
    /// [`SshSession::exec_checked`].
    ///
    /// The command is POSIX shell text run by `/bin/sh` (started from the user's login shell,
    /// so the login environment applies), under the node's coreutils `timeout`: when the
    /// client gives up after the timeout, the node stops the command 2 s later by itself.
    pub async fn exec(&self, command: &str) -> Result<ExecOutput, Error> {
        self.run(command, None, self.target().command_timeout).await
    }

    /// Runs `command` and feeds `stdin` to it, then closes stdin. This is how secrets reach a
    /// remote command: they travel inside the encrypted channel and never appear on a command
    /// line (remote `ps`) or in logs.
    pub async fn exec_with_input(&self, command: &str, stdin: &[u8]) -> Result<ExecOutput, Error> {
        self.run(command, Some(stdin), self.target().command_timeout)
            .await
    }

    /// Like [`SshSession::exec`] with an explicit timeout instead of the target's.
    pub async fn exec_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, Error> {
        self.run(command, None, timeout).await
    }

    /// Like [`SshSession::exec`], but a command that does not exit with status 0 is an
    /// [`Error::SshCommandFailed`] carrying the end of its stderr.
    pub async fn exec_checked(&self, command: &str) -> Result<ExecOutput, Error> {
        let out = self.exec(command).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(Error::SshCommandFailed {
                node: self.target().node.clone(),
                command: short_command(command),
                status: out.status_text(),
                stderr: shorten(out.stderr_str().trim_end(), STDERR_SHOWN, true),
            })
        }
    }

    async fn run(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, Error> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let started = Instant::now();
        let channel = self
            .inner
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.channel_error("open a session channel", e))?;
        let (mut read, write) = channel.split();
        write
            .exec(true, bounded_command(command, timeout))
            .await
            .map_err(|e| self.channel_error("exec", e))?;

        let collected = tokio::time::timeout(timeout, collect(&mut read, &write, stdin)).await;
        let node = &self.target().node;
        match collected {
            Ok(Ok(out)) => {
                tracing::debug!(
                    node = %node,
                    command = %short_command(command),
                    status = %out.status_text(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "remote command done"
                );
                Ok(out)
            }
            Ok(Err(e)) => Err(self.channel_error(format!("exec `{}`", short_command(command)), e)),
            Err(_elapsed) => {
                // The node stops the command itself (see `bounded_command`); drop the channel.
                // An error here only means the channel is already gone.
                let _ = write.close().await;
                tracing::debug!(node = %node, command = %short_command(command), ?timeout,
                    "remote command timed out");
                Err(Error::SshCommandTimeout {
                    node: node.clone(),
                    command: short_command(command),
                    after: timeout,
                })
            }
        }
    }
}

/// Reads the channel until it closes while writing `stdin` (then EOF) concurrently, so a large
/// input cannot deadlock against a full output window.
async fn collect(
    read: &mut ChannelReadHalf,
    write: &ChannelWriteHalf<client::Msg>,
    stdin: Option<&[u8]>,
) -> Result<ExecOutput, russh::Error> {
    let mut out = ExecOutput::default();
    let writer = async {
        if let Some(input) = stdin
            && !input.is_empty()
        {
            write.data(input).await?;
        }
        write.eof().await
    };
    let mut writer = std::pin::pin!(writer);
    let mut writer_done = false;
    loop {
        tokio::select! {
            result = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(e) = result {
                    // The command may exit without reading its input; that is its business.
                    tracing::debug!(error = %e, "writing stdin to the remote command stopped");
                }
            }
            msg = read.wait() => match msg {
                None => break,
                Some(ChannelMsg::Data { data }) => out.stdout.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    out.stderr.extend_from_slice(&data)
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => out.exit_status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name: sig, .. }) => {
                    out.exit_signal = Some(signal_name(&sig))
                }
                Some(ChannelMsg::Failure) if out.exit_status.is_none() => {
                    return Err(russh::Error::RequestDenied);
                }
                Some(_) => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_and_success() {
        let mut o = ExecOutput::default();
        assert_eq!(o.status_text(), "no exit status");
        assert!(!o.success());
        o.exit_signal = Some("KILL".into());
        assert_eq!(o.status_text(), "signal KILL");
        o.exit_status = Some(0);
        assert!(o.success());
        assert_eq!(o.status_text(), "exit status 0");
    }

    #[test]
    fn commands_are_shortened_to_one_line() {
        assert_eq!(short_command("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        let s = short_command(&long);
        assert_eq!(s.chars().count(), COMMAND_SHOWN + 1);
        assert!(s.ends_with('…'));
        assert_eq!(shorten("abcdef", 3, true), "…def");
    }

    #[test]
    fn commands_are_bounded_on_the_node_and_quoted() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            bounded_command("echo 'a b'; exit 3", Duration::from_millis(1500)),
            "timeout -k 5s 4s /bin/sh -c 'echo '\\''a b'\\''; exit 3'"
        );
        // The quoted command survives a real shell unchanged.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("a'b\"c $HOME `x`\n")))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a'b\"c $HOME `x`\n");
    }

    #[test]
    fn custom_signal_names_pass_through() {
        assert_eq!(signal_name(&Sig::KILL), "KILL");
        assert_eq!(signal_name(&Sig::Custom("USR2".into())), "USR2");
    }
}
