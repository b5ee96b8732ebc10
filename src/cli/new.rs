//! `kiln new`: scaffolds a fleet member that passes `kiln lint` as written.

use std::path::Path;
use std::process::ExitCode;

use crate::scaffold::{self, Api, PipAgent};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// An agent installed from PyPI at a pinned version (containers/agents/NAME), listed
    /// in the root bake file's `agents` group.
    Agent {
        /// The agent's name (lowercase letters, digits, single `-`).
        name: String,
        /// The package and its exact version.
        #[arg(long, value_name = "PACKAGE==VERSION")]
        pip: String,
        /// The shell command line that runs the agent on the task: `$PROMPT_FILE` holds
        /// the prompt, `$MODEL` the model, `$OPENAI_BASE_URL` / `$ANTHROPIC_BASE_URL` the
        /// gateway, `$AGENT_OUTPUT_DIR` is kept with the results; the venv is on PATH.
        #[arg(long, value_name = "COMMAND")]
        cmd: String,
        /// The API the agent speaks to the gateway (its run script requires that one's
        /// endpoint).
        #[arg(long, value_enum, default_value = "openai")]
        api: ApiArg,
        /// The image description (default: "PACKAGE VERSION (PyPI)").
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ApiArg {
    Openai,
    Anthropic,
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Agent {
            name,
            pip,
            cmd,
            api,
            description,
        } => {
            let api = match api {
                ApiArg::Openai => Api::OpenAi,
                ApiArg::Anthropic => Api::Anthropic,
            };
            let mut agent = PipAgent::new(&name, &pip, &cmd, api)
                .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
            if let Some(d) = description {
                agent.description = d;
            }
            let written = scaffold::write_agent(repo, &agent)
                .map_err(|e| super::Failure::usage(format!("{e:#}")))?;
            for path in &written {
                println!("{}", path.display());
            }
            eprintln!(
                "created agent {name}; next: kiln lint, then kiln build agent {name} --ca-bundle /etc/ssl/certs/ca-certificates.crt \
                 (the bundle only behind a TLS-intercepting proxy)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
