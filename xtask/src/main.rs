//! squall's project tasks (`cargo xtask <task>`).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no task yet")
}
