//! The usual start of an agent test: a fake uWSGI stats server, a fake registry, a token file,
//! and an in-process agent for node 127.0.0.1:3031 reporting to that registry.

use uwsgi_router::agent::Agent;

use super::{AgentSetup, FakeRegistry, FakeStats};

/// A stats server, a registry and an agent setup, nothing running on them yet.
pub struct Fakes {
    /// uWSGI's stats server, serving a fixture.
    pub stats: FakeStats,
    /// The router the agent reports to.
    pub router: FakeRegistry,
    /// The token file and flags.
    pub setup: AgentSetup,
}

impl Fakes {
    /// Starts the stats server on fixture `stats` and the registry.
    pub async fn start(stats: &str) -> Self {
        Self {
            stats: FakeStats::start(stats).await,
            router: FakeRegistry::start().await,
            setup: AgentSetup::new(),
        }
    }

    /// An in-process agent for node 127.0.0.1:3031 on them, `extra` flags appended.
    pub fn start_agent(&self, extra: &[&str]) -> Agent {
        let routers = [self.router.url()];
        let config = self
            .setup
            .config(&routers, self.stats.addr, "127.0.0.1:3031", extra);
        Agent::start(config).expect("the agent starts")
    }

    /// Like [`Fakes::start_agent`], once its first report has arrived.
    pub async fn reporting_agent(&self, extra: &[&str]) -> Agent {
        let agent = self.start_agent(extra);
        self.router.wait_report("a first report", |_| true).await;
        agent
    }
}
