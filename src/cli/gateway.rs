use crate::printer::outln;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::gateway::{self, fixture::Header, Mode, Options};

use super::Failure;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve a fixture's recorded answers in order, checking every request against the recording.
    Replay {
        /// The fixture (docs/model-gateway.md).
        fixture: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: SocketAddr,
        /// Serve a request that differs from the recording anyway (and count it).
        #[arg(long)]
        lenient: bool,
        /// Pace streamed answers as recorded, FACTOR times faster (1: as recorded), or
        /// `max`: no waiting. Fixtures without recorded times are never paced.
        #[arg(
            long,
            value_name = "FACTOR|max",
            default_value = "1",
            env = crate::env::REPLAY_SPEED.name
        )]
        speed: gateway::Speed,
        /// Write the counters (JSON) to this file after every call.
        #[arg(long, value_name = "FILE")]
        stats: Option<PathBuf>,
        /// Stop once this file exists (a sidecar ending with the container it serves).
        #[arg(long, value_name = "FILE")]
        until_file: Option<PathBuf>,
    },
    /// Forward model calls to an upstream API and write them to a fixture.
    Record {
        /// The upstream base URL (http[s]://HOST[:PORT][/PREFIX]).
        #[arg(long, value_name = "URL")]
        upstream: String,
        /// A CA bundle (PEM) trusted for an https upstream besides the system's roots.
        #[arg(long, env = crate::env::CA_BUNDLE.name, value_name = "FILE")]
        ca_bundle: Option<PathBuf>,
        /// The fixture to write.
        #[arg(long, short, value_name = "FIXTURE")]
        output: PathBuf,
        /// The environment variable holding the upstream API key (sent upstream only).
        #[arg(long, value_name = "NAME")]
        api_key_env: Option<String>,
        /// An environment variable whose value must never be written (repeatable).
        #[arg(long = "redact-env", value_name = "NAME")]
        redact_env: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: SocketAddr,
        #[arg(long, value_name = "FILE")]
        stats: Option<PathBuf>,
        /// Stop once this file exists (a sidecar ending with the container it serves).
        #[arg(long, value_name = "FILE")]
        until_file: Option<PathBuf>,
        /// Header fields of the fixture.
        #[arg(long, default_value = "")]
        benchmark: String,
        #[arg(long, default_value = "")]
        task: String,
        #[arg(long, default_value = "")]
        agent: String,
        #[arg(long, default_value = "")]
        model: String,
    },
    /// The egress proxy of an allowlist network policy: an HTTP proxy (CONNECT and
    /// plain HTTP) that lets a connection out only to a listed host (exact names,
    /// `*.suffix`, IP literals, CIDR ranges). kiln starts it beside a Harbor task whose
    /// `network_mode` is `allowlist`, on the task's internal network.
    Egress {
        /// A host the task may reach (repeatable; none: nothing goes out).
        #[arg(long = "allow", value_name = "HOST")]
        allow: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:3128", value_name = "ADDR")]
        listen: SocketAddr,
    },
    /// Convert OpenTelemetry GenAI spans (OTLP/JSON) into a fixture.
    ImportOtel {
        /// The trace file (as an OpenTelemetry collector's file exporter writes it).
        traces: PathBuf,
        #[arg(long, short, value_name = "FIXTURE")]
        output: PathBuf,
        #[arg(long, default_value = "")]
        benchmark: String,
        #[arg(long, default_value = "")]
        task: String,
        #[arg(long, default_value = "")]
        agent: String,
        /// The recorded run's score, for the header.
        #[arg(long)]
        score: Option<f64>,
    },
}

fn env_value(flag: &str, name: &str) -> anyhow::Result<String> {
    crate::env::named(name).ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {name}: {name} is not set in kiln's environment"
        ))
    })
}

pub fn run(_repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let until;
    let opts = match args.command {
        Command::Egress { allow, listen } => {
            let list = gateway::egress::Allowlist::parse(&allow)
                .map_err(|e| Failure::usage(format!("{e:#}")))?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(gateway::egress::serve(&listen.to_string(), list))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::ImportOtel {
            traces,
            output,
            benchmark,
            task,
            agent,
            score,
        } => {
            let header = Header {
                benchmark,
                task,
                agent,
                score,
                ..Header::new()
            };
            let f = gateway::otel::import_file(&traces, &output, &header)?;
            let failed = f.exchanges.iter().filter(|e| e.status >= 400).count();
            outln!(
                "{}: {} exchanges ({failed} recorded errors) from {}",
                output.display(),
                f.exchanges.len(),
                traces.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Replay {
            fixture,
            listen,
            lenient,
            speed,
            stats,
            until_file,
        } => {
            until = until_file;
            Options {
                listen,
                mode: Mode::Replay {
                    fixture,
                    lenient,
                    speed,
                },
                stats,
                model: None,
            }
        }
        Command::Record {
            upstream,
            ca_bundle,
            output,
            api_key_env,
            redact_env,
            listen,
            stats,
            until_file,
            benchmark,
            task,
            agent,
            model,
        } => {
            until = until_file;
            let api_key = api_key_env
                .as_deref()
                .map(|n| env_value("--api-key-env", n))
                .transpose()?;
            let redact = redact_env
                .iter()
                .map(|n| Ok((n.clone(), env_value("--redact-env", n)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Options {
                listen,
                mode: Mode::Record {
                    upstream,
                    out: output,
                    api_key,
                    redact,
                    header: Box::new(Header {
                        benchmark,
                        task,
                        agent,
                        model: model.clone(),
                        ..Header::new()
                    }),
                    ca_bundle,
                },
                stats,
                model: (!model.is_empty()).then_some(model),
            }
        }
    };
    gateway::run_foreground(&opts, until.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
