//! The arena's Rust client with an account: signs in (or registers, or plays as a guest),
//! keeps the session token in a file, and on the next run connects with it at the upgrade
//! (no password again); walks a little in the lobby, saves its stats and prints them with
//! the leaderboard.
//!
//! ```sh
//! cargo run --release -p ticksock-arena                                  # the server
//! cargo run --release -p ticksock-arena --example account -- --register ann --password pw
//! cargo run --release -p ticksock-arena --example account                # the kept token
//! cargo run --release -p ticksock-arena --example account -- --guest     # a guest (device token kept too)
//! ```
//!
//! `docs/PROTOCOL.md` 8.8 describes the accounts, 13 the tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ticksock_arena::proto::{
    Guest, GuestSession, Join, Joined, Leaderboard, LeaderboardBy, LeaderboardEntry, Move, Moved,
    PlayerStats, ROUTE_FLUSH_STATS, ROUTE_GUEST, ROUTE_JOIN, ROUTE_LEADERBOARD, ROUTE_MOVE, ROUTE_REGISTER,
    ROUTE_SIGNIN, Register, Session, SignIn,
};
use ticksock_client::{BlockingClient, Config, Error, Event};
use ticksock_protocol::error_code;

/// Signs in to the arena, keeps the token, walks, and prints its stats and the leaderboard.
#[derive(Parser)]
struct Args {
    /// The arena's URL.
    #[arg(default_value = "ws://127.0.0.1:7777/")]
    url: String,
    /// Register this new account name (with `--password`).
    #[arg(long, conflicts_with_all = ["signin", "guest"])]
    register: Option<String>,
    /// Sign in to this account (with `--password`).
    #[arg(long, conflicts_with = "guest")]
    signin: Option<String>,
    /// The account's password.
    #[arg(long, default_value = "")]
    password: String,
    /// Play as a guest: the device token in `<token-file>.device` brings the same guest back.
    #[arg(long)]
    guest: bool,
    /// Where the session token is kept between runs.
    #[arg(long, default_value = "arena-token.txt")]
    token_file: PathBuf,
    /// How long to walk east in the lobby, in milliseconds (the arena counts the distance).
    #[arg(long, default_value_t = 500)]
    walk_ms: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut client = connect(&args)?;
    let _: Joined = client.call(ROUTE_JOIN, &Join { room: "lobby".into() })?;
    let _: Moved = client.call(ROUTE_MOVE, &Move { dx: 1, dy: 0 })?;
    std::thread::sleep(Duration::from_millis(args.walk_ms));
    let _: Moved = client.call(ROUTE_MOVE, &Move { dx: 0, dy: 0 })?;
    let mine: PlayerStats = client.call(ROUTE_FLUSH_STATS, &())?;
    println!("your totals: distance {}, messages {}, games {}", mine.distance, mine.messages, mine.games);
    for by in [LeaderboardBy::Distance, LeaderboardBy::Messages, LeaderboardBy::Games] {
        let top: Vec<LeaderboardEntry> = client.call(ROUTE_LEADERBOARD, &Leaderboard { by, limit: 10 })?;
        let line: Vec<String> = top.iter().map(|e| format!("{} {}", e.name, e.value)).collect();
        println!("top by {by:?}: {}", line.join(", "));
    }
    client.close();
    Ok(())
}

/// A client signed in as the arguments say: a new sign-in (whose token is saved), or the
/// token kept by an earlier run, offered at the upgrade.
fn connect(args: &Args) -> Result<BlockingClient, Box<dyn std::error::Error>> {
    let within = Duration::from_secs(5);
    let signing_in = args.register.is_some() || args.signin.is_some() || args.guest;
    if !signing_in {
        let token = std::fs::read_to_string(&args.token_file)
            .map_err(|e| format!("no kept token in {} ({e}): sign in first", args.token_file.display()))?;
        let mut client = BlockingClient::connect_with_token(
            &args.url,
            Config::default(),
            Some(token.trim().to_owned()),
            within,
        )?;
        // A refused or expired token closes the connection right after its welcome.
        match client.call::<_, PlayerStats>(ROUTE_FLUSH_STATS, &()) {
            Ok(_) => {
                println!("signed in with the token kept in {}", args.token_file.display());
                return Ok(client);
            }
            Err(Error::Disconnected | Error::Server { code: error_code::UNAUTHENTICATED, .. }) => {
                let refused = std::iter::from_fn(|| client.poll_event())
                    .any(|e| matches!(e, Event::TokenRefused { .. }));
                return Err(format!(
                    "the kept token was {}: sign in again",
                    if refused { "refused" } else { "not accepted" }
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut client = BlockingClient::connect(&args.url, Config::default(), within)?;
    let token = if let Some(name) = &args.register {
        let session: Session =
            client.call(ROUTE_REGISTER, &Register { name: name.clone(), password: args.password.clone() })?;
        session.token
    } else if let Some(name) = &args.signin {
        let session: Session =
            client.call(ROUTE_SIGNIN, &SignIn { name: name.clone(), password: args.password.clone() })?;
        session.token
    } else {
        let device_file = device_file(&args.token_file);
        let device_token = std::fs::read_to_string(&device_file).ok().map(|t| t.trim().to_owned());
        let guest: GuestSession = client.call(ROUTE_GUEST, &Guest { device_token })?;
        std::fs::write(&device_file, &guest.device_token)?;
        guest.token
    };
    // In band for this connection; kept by the session for its reconnects, and in the file
    // for the next run.
    let me = client.authenticate(&token)?;
    std::fs::write(&args.token_file, &token)?;
    println!("signed in as {} (token kept in {})", me.user, args.token_file.display());
    Ok(client)
}

fn device_file(token_file: &Path) -> PathBuf {
    let mut name = token_file.as_os_str().to_owned();
    name.push(".device");
    PathBuf::from(name)
}
