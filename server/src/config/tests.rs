//! The configuration's tests: each validation rule crossed, the flags against the defaults,
//! and the README's limits and cluster tables against both.

use super::*;
use crate::Error;

/// The command `Config`'s declaration makes, alone.
fn command() -> clap::Command {
    <Config as clap::Args>::augment_args(clap::Command::new("server"))
}

/// The matches of a command line of `Config`'s flags.
fn matches(flags: &[&str]) -> clap::ArgMatches {
    command().try_get_matches_from(std::iter::once("server").chain(flags.iter().copied())).expect("flags")
}

/// A value as the docs and the README write it: `10 000`, `64 KiB`, `5 s`, `100 µs`,
/// `` `Realtime` ``.
#[derive(Debug, PartialEq)]
enum Stated {
    Count(u128),
    Time(Duration),
    Word(String),
}

fn read_stated(text: &str) -> Stated {
    let text = text.trim().trim_end_matches('.').trim_matches('`');
    let mut words = text.split_whitespace().peekable();
    let mut digits = String::new();
    // "10 000": groups of three digits after the first are thousands.
    while let Some(word) =
        words.next_if(|w| w.bytes().all(|b| b.is_ascii_digit()) && (digits.is_empty() || w.len() == 3))
    {
        digits.push_str(word);
    }
    let Ok(n) = digits.parse::<u64>() else { return Stated::Word(text.to_lowercase()) };
    match words.next() {
        Some("KiB") => Stated::Count(u128::from(n) << 10),
        Some("MiB") => Stated::Count(u128::from(n) << 20),
        Some("s") => Stated::Time(Duration::from_secs(n)),
        Some("ms") => Stated::Time(Duration::from_millis(n)),
        Some("µs") => Stated::Time(Duration::from_micros(n)),
        _ => Stated::Count(u128::from(n)),
    }
}

/// Whether `stated` is the default of `arg`: a time in any unit against a duration flag's
/// value in the unit its name ends with; a count against its number; a word against its
/// text.
fn states_default_of(stated: &Stated, arg: &clap::Arg) -> bool {
    let [default] = arg.get_default_values() else {
        // A flag without a default (the cluster's `--cluster`, say) is stated as "none".
        return arg.get_default_values().is_empty() && *stated == Stated::Word("none".to_owned());
    };
    let default = default.to_string_lossy();
    let long = arg.get_long().unwrap_or_default();
    match stated {
        Stated::Time(time) => {
            let read = if long.ends_with("-ms") {
                units::millis(&default)
            } else if long.ends_with("-us") {
                units::micros(&default)
            } else if long.ends_with("-secs") {
                units::secs(&default)
            } else {
                return false;
            };
            read.as_ref() == Ok(time)
        }
        Stated::Count(n) => default.parse::<u128>().as_ref() == Ok(n),
        Stated::Word(word) => default.to_lowercase() == *word,
    }
}

#[test]
fn defaults_are_valid() {
    Config::default().validate().expect("default config");
    Config::echo().validate().expect("echo config");
}

#[test]
fn every_flag_has_a_default_that_reads_back_as_config_default() {
    // The TLS files are the only flags whose default is none (plain TCP).
    let optional = [Some("tls-cert"), Some("tls-key")];
    for arg in command().get_arguments().filter(|a| !optional.contains(&a.get_long())) {
        assert_eq!(arg.get_default_values().len(), 1, "--{:?} has one default", arg.get_long());
        assert!(!arg.is_hide_default_value_set(), "--{:?} shows its default", arg.get_long());
    }
    // The defaults in the help, read back as a command line without flags would be.
    let read = Config::from_arg_matches(&matches(&[])).expect("defaults");
    assert_eq!(format!("{read:?}"), format!("{:?}", Config::default()));
}

#[test]
fn every_flag_s_doc_states_its_default_truly() {
    for arg in command().get_arguments() {
        let flag = arg.get_long().unwrap_or_default();
        let doc = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
        let (_, rest) =
            doc.split_once("Default ").unwrap_or_else(|| panic!("--{flag}: no default in {doc:?}"));
        let end = [", ", ". ", "\n"].iter().filter_map(|end| rest.find(end)).min().unwrap_or(rest.len());
        let stated = read_stated(&rest[..end]);
        assert!(
            states_default_of(&stated, arg),
            "--{flag}: the doc says {stated:?}, the default is {:?}",
            arg.get_default_values()
        );
    }
}

/// The flags of the tables in the README's sections `heading`: each read, and its stated
/// default checked against the flag's own in `command`. Returns how many were checked.
fn check_readme_table(readme: &str, heading: &str, command: &clap::Command) -> usize {
    let arg = |flag: &str| command.get_arguments().find(|a| a.get_long() == Some(flag));
    let (_, section) =
        readme.split_once(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("the README has {heading:?}"));
    let mut checked = 0;
    for row in section.lines().take_while(|l| !l.starts_with("## ")).filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').collect();
        // The quoted pieces are every other one, from the second.
        let quoted = cells[1].split('`').skip(1).step_by(2);
        let flags: Vec<&str> = quoted.filter_map(|q| q.strip_prefix("--")).collect();
        if flags.is_empty() {
            continue;
        }
        let values: Vec<&str> = cells[2].split(" / ").collect();
        assert_eq!(flags.len(), values.len(), "one value per flag: {row}");
        for (flag, value) in flags.iter().zip(values) {
            let arg = arg(flag).unwrap_or_else(|| panic!("--{flag} in the README is a flag"));
            let stated = read_stated(value);
            assert!(states_default_of(&stated, arg), "--{flag}: the README says {stated:?}");
            checked += 1;
        }
    }
    checked
}

#[test]
fn the_readme_s_limits_and_cluster_tables_state_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md beside the workspace");
    // `Config`'s flags, and the cluster's, which a game flattens beside them.
    let command = <crate::cluster::ClusterArgs as clap::Args>::augment_args(command());
    let checked = check_readme_table(&readme, "## Limits and memory", &command);
    assert!(checked >= 20, "the limits table was read ({checked} flags)");
    let checked = check_readme_table(&readme, "## Cluster", &command);
    assert!(checked >= 8, "the cluster's table was read ({checked} flags)");
    for arg in command.get_arguments() {
        let flag = format!("`--{}", arg.get_long().unwrap_or_default());
        assert!(readme.contains(&flag), "the README names {flag}`");
    }
}

/// Each rule of `validate`: its error, and a change that puts a default config just inside
/// the rule (`false`) or just over it (`true`).
type Rule = (&'static str, fn(&mut Config, bool));

const RULES: [Rule; 21] = [
    ("--tick-hz must be at least 1", |c, over| c.tick_hz = if over { 0 } else { 1 }),
    ("--max-connections must be at least 1", |c, over| c.max_connections = usize::from(!over)),
    ("--read-buffer-bytes must be at least 1", |c, over| c.read_buffer_bytes = usize::from(!over)),
    ("--session-replay-bytes must be at least 1", |c, over| c.session_replay_bytes = usize::from(!over)),
    ("--inbound-queue must be at least 1", |c, over| c.inbound_queue = usize::from(!over)),
    ("--outbound-queue must be at least 1", |c, over| c.outbound_queue = usize::from(!over)),
    ("--read-budget must be at least 1", |c, over| c.read_budget = usize::from(!over)),
    ("--broadcast-flush-slice must be at least 1", |c, over| c.broadcast_flush_slice = usize::from(!over)),
    ("--rate-messages-per-sec must be at least 1", |c, over| c.rate_messages_per_sec = u32::from(!over)),
    ("--rate-burst-messages must be at least 1", |c, over| c.rate_burst_messages = u32::from(!over)),
    ("--rate-bytes-per-sec must be at least 1", |c, over| c.rate_bytes_per_sec = u32::from(!over)),
    ("--hold-after-bytes must be at least 1", |c, over| c.hold_after_bytes = usize::from(!over)),
    ("--max-held-events must be at least 1", |c, over| c.max_held_events = usize::from(!over)),
    ("--stalled-reader-timeout-ms must be at least 1", |c, over| {
        c.stalled_reader_timeout = Duration::from_millis(u64::from(!over))
    }),
    ("--hold-after-bytes must be below --max-outbound-bytes", |c, over| {
        c.hold_after_bytes = if over { c.max_outbound_bytes } else { c.max_outbound_bytes - 1 };
    }),
    ("--rate-burst-bytes must be at least --max-message-bytes", |c, over| {
        c.max_message_bytes = 4096;
        c.max_frame_bytes = 4096;
        c.rate_burst_bytes = if over { 4095 } else { 4096 };
    }),
    ("--max-outbound-bytes must exceed --write-coalesce-bytes", |c, over| {
        c.session_replay_bytes = 1;
        c.hold_after_bytes = 1;
        c.write_coalesce_bytes = 4096;
        c.max_outbound_bytes = if over { 4096 } else { 4097 };
    }),
    ("--max-frame-bytes must not exceed --max-message-bytes", |c, over| {
        c.max_message_bytes = 1024;
        c.max_frame_bytes = if over { 1025 } else { 1024 };
    }),
    ("--tls-cert needs --tls-key (give both or neither)", |c, over| {
        c.tls_cert = Some("cert.pem".into());
        c.tls_key = (!over).then(|| "key.pem".into());
    }),
    ("--tls-key needs --tls-cert (give both or neither)", |c, over| {
        c.tls_key = Some("key.pem".into());
        c.tls_cert = (!over).then(|| "cert.pem".into());
    }),
    ("--min-turn-interval-us must be at most 10000", |c, over| {
        c.min_turn_interval = MAX_TURN_INTERVAL + Duration::from_micros(u64::from(over));
    }),
];

#[test]
fn each_rule_is_crossed_and_its_error_names_real_flags() {
    let command = command();
    for (error, set) in RULES {
        let mut inside = Config::default();
        set(&mut inside, false);
        inside.validate().unwrap_or_else(|e| panic!("just inside `{error}`: {e}"));
        let mut over = Config::default();
        set(&mut over, true);
        match over.validate() {
            Err(Error::Config(said)) => assert_eq!(said, error),
            other => panic!("just over `{error}`: {other:?}"),
        }
        for flag in error.split_whitespace().filter_map(|w| w.strip_prefix("--")) {
            assert!(command.get_arguments().any(|a| a.get_long() == Some(flag)), "--{flag}");
        }
    }
}

#[test]
fn the_turn_interval_may_be_off() {
    Config { min_turn_interval: Duration::ZERO, ..Config::default() }.validate().expect("off");
}

#[test]
fn flags_set_their_fields_in_their_units() {
    let c = Config::from_arg_matches(&matches(&[
        "--listen=[::1]:9000",
        "--tick-hz=60",
        "--max-connections=5",
        "--idle-timeout-ms=1500",
        "--min-turn-interval-us=250",
        "--shutdown-timeout-secs=2",
        "--logic-priority=raised",
    ]))
    .expect("flags");
    assert_eq!(c.listen, "[::1]:9000".parse::<SocketAddr>().expect("literal"));
    assert_eq!(c.tick_hz, 60);
    assert_eq!(c.max_connections, 5);
    assert_eq!(c.idle_timeout, Duration::from_millis(1500));
    assert_eq!(c.min_turn_interval, Duration::from_micros(250));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(2));
    assert_eq!(c.logic_priority, LogicPriority::Raised);
    assert_eq!(c.max_message_bytes, Config::default().max_message_bytes);
}

#[test]
fn a_bad_listen_value_is_refused_by_the_parser_naming_the_flag() {
    let error = command().try_get_matches_from(["server", "--listen", "localhost"]).expect_err("no port");
    let said = error.to_string();
    assert!(said.contains("--listen") && said.contains("no port in `localhost`"), "{said}");
}

#[test]
fn typed_flags_override_another_base_and_defaults_do_not() {
    let mut c = Config::echo();
    c.update_from_typed_flags(&matches(&["--rate-messages-per-sec", "1000", "--tick-hz", "20"]))
        .expect("flags");
    assert_eq!(c.rate_messages_per_sec, 1000, "typed, though equal to the default");
    assert_eq!(c.tick_hz, 20);
    assert_eq!(c.max_message_bytes, Config::echo().max_message_bytes, "not typed");
    assert_eq!(c.rate_bytes_per_sec, u32::MAX, "not typed");
    assert!(c.echo);
}

#[test]
fn a_message_limit_typed_alone_caps_the_frame_limit() {
    let with = |base: Config, flags: &[&str]| {
        let mut c = base;
        c.update_from_typed_flags(&matches(flags)).expect("flags");
        (c.max_message_bytes, c.max_frame_bytes)
    };
    assert_eq!(with(Config::default(), &["--max-message-bytes", "1024"]), (1024, 1024));
    assert_eq!(with(Config::echo(), &["--max-message-bytes", "1024"]), (1024, 1024));
    // Raised alone, it leaves the frame limit where it was.
    assert_eq!(with(Config::default(), &["--max-message-bytes", "100000"]), (100_000, 64 << 10));
    let both = ["--max-message-bytes", "1024", "--max-frame-bytes", "512"];
    assert_eq!(with(Config::default(), &both), (1024, 512));
}

#[test]
fn a_rate_typed_alone_brings_its_burst_to_one_seconds_worth() {
    let with = |base: Config, flags: &[&str]| {
        let mut c = base;
        c.update_from_typed_flags(&matches(flags)).expect("flags");
        c.validate().expect("valid");
        (c.rate_messages_per_sec, c.rate_burst_messages, c.rate_bytes_per_sec, c.rate_burst_bytes)
    };
    assert_eq!(with(Config::default(), &["--rate-messages-per-sec", "10"]), (10, 10, 1 << 20, 1 << 20));
    assert_eq!(with(Config::echo(), &["--rate-messages-per-sec", "10"]), (10, 10, u32::MAX, u32::MAX));
    let both = ["--rate-messages-per-sec", "10", "--rate-burst-messages", "50"];
    assert_eq!(with(Config::default(), &both), (10, 50, 1 << 20, 1 << 20));
    // A byte rate under the largest message keeps a burst that lets that message through.
    assert_eq!(with(Config::default(), &["--rate-bytes-per-sec", "1000"]), (1000, 1000, 1000, 64 << 10));
    assert_eq!(with(Config::default(), &["--rate-bytes-per-sec", "200000"]), (1000, 1000, 200_000, 200_000));
}

#[test]
fn the_replay_bound_leaves_the_outbound_queue_its_headroom() {
    assert_eq!(Config::default().session_replay_bound(), 512 << 10);
    let small = Config { max_outbound_bytes: 256 << 10, ..Config::default() };
    assert_eq!(small.session_replay_bound(), (256 << 10) - 4096);
    let tiny = Config { max_outbound_bytes: 1000, write_coalesce_bytes: 100, ..Config::default() };
    assert_eq!(tiny.session_replay_bound(), 1);
}

#[test]
fn tick_period_of_30_hz() {
    assert_eq!(Config::default().tick_period(), Duration::from_nanos(33_333_333));
}

#[test]
fn the_allowed_origins_flag_takes_a_comma_separated_list() {
    let c = Config::from_arg_matches(&matches(&[
        "--allowed-origins",
        "https://game.example.com, http://localhost:8080,self",
    ]))
    .expect("flags");
    let origins = &c.allowed_origins;
    assert!(origins.same_host && !origins.any);
    assert_eq!(origins.to_string(), "self,https://game.example.com,http://localhost:8080");
    assert!(origins.allows(Some("http://localhost:8080"), Some("127.0.0.1:7777")));
    assert!(!origins.allows(Some("http://localhost:8081"), Some("127.0.0.1:7777")));
    let any = Config::from_arg_matches(&matches(&["--allowed-origins=*"])).expect("flags");
    assert_eq!(any.allowed_origins, AllowedOrigins::any());
    let error = command().try_get_matches_from(["server", "--allowed-origins", "https://a.example/"]);
    let said = error.expect_err("a path").to_string();
    assert!(said.contains("--allowed-origins") && said.contains("has a path"), "{said}");
}

#[test]
fn echo_mode_allows_any_origin_unless_the_flag_is_typed() {
    assert_eq!(Config::default().allowed_origins, AllowedOrigins::same_host());
    assert_eq!(Config::echo().allowed_origins, AllowedOrigins::any());
    let mut c = Config::echo();
    c.update_from_typed_flags(&matches(&["--allowed-origins", "self"])).expect("flags");
    assert_eq!(c.allowed_origins, AllowedOrigins::same_host());
}
