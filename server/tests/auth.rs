//! Authentication and guarded routes (PROTOCOL.md section 13), in simulated time: tokens
//! checked on the job pool at the upgrade and in band, expiry with its grace, guards before the
//! handler, role changes and bans on live connections.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ticksock_protocol::{AuthReply, CLOSE_AUTH_EXPIRED, CLOSE_AUTH_FAILED, Encoding, ROUTE_AUTH, error_code};
use ticksock_server::testing::TestServer;
use ticksock_server::{AppError, Authenticator, Caller, ConnId, Ctx, Game, Guard, Identity, Router};

/// Tokens of the form `user:role1,role2:seconds-to-live` (`-` for none); `bad` is refused.
struct Tokens;

impl Authenticator for Tokens {
    fn verify(&self, token: &str) -> Result<Identity, String> {
        let mut parts = token.split(':');
        let (Some(user), Some(roles), Some(ttl)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("not a token".into());
        };
        let roles = roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect();
        let expires = match ttl {
            "-" => None,
            secs => Some(SystemTime::now() + Duration::from_secs(secs.parse().map_err(|_| "bad ttl")?)),
        };
        Ok(Identity { user: user.into(), roles, expires })
    }
}

/// A game whose `whoami` is open to all, `secret` needs an identity, `kick` the admin role,
/// `ping` has its own rate; every handler that runs is counted.
#[derive(Default)]
struct Guarded {
    handled: u32,
    authed: Vec<ConnId>,
}

impl Game for Guarded {
    fn routes(router: &mut Router<Self>) {
        router.route("whoami", |g: &mut Guarded, ctx: &mut Ctx<'_>, caller: Caller, (): ()| {
            g.handled += 1;
            Ok::<_, AppError>(ctx.hub().user_of(caller.conn).map(str::to_owned))
        });
        router
            .route("secret", |g: &mut Guarded, _: &mut Ctx<'_>, _: Caller, (): ()| {
                g.handled += 1;
                Ok::<_, AppError>(42u32)
            })
            .require(Guard::authenticated());
        router
            .route("kick", |g: &mut Guarded, ctx: &mut Ctx<'_>, _: Caller, user: String| {
                g.handled += 1;
                Ok::<_, AppError>(ctx.close_user(&user, 4010, "banned") as u32)
            })
            .require(Guard::role("admin"));
        router.route("demote", |_: &mut Guarded, ctx: &mut Ctx<'_>, _: Caller, user: String| {
            Ok::<_, AppError>(ctx.hub_mut().set_roles(&user, &[]) as u32)
        });
        router
            .route("ping", |g: &mut Guarded, _: &mut Ctx<'_>, _: Caller, (): ()| {
                g.handled += 1;
                Ok::<_, AppError>(())
            })
            .require(Guard::rate(1, 2));
    }

    fn authenticator(&self) -> Option<Arc<dyn Authenticator>> {
        Some(Arc::new(Tokens))
    }

    fn on_auth(&mut self, _: &mut Ctx<'_>, conn: ConnId) {
        self.authed.push(conn);
    }
}

fn code<T: std::fmt::Debug>(answer: Option<Result<T, ticksock_server::testing::CallError>>) -> u16 {
    answer.expect("answered").expect_err("an error").code
}

#[test]
fn a_token_at_the_upgrade_is_checked_before_any_request_is_handled() {
    let mut server = TestServer::new(Guarded::default());
    let ann = server.connect_with_token(Encoding::Binary, "ann:player:-");
    let waiting = server.send(ann, "secret", &());
    assert!(server.answer::<u32>(ann, waiting).is_none(), "waits for the check");
    assert_eq!(server.game().handled, 0);
    server.run_jobs();
    assert_eq!(server.answer::<u32>(ann, waiting), Some(Ok(42)), "handled once the token is good");
    assert_eq!(server.call::<_, Option<String>>(ann, "whoami", &()), Ok(Some("ann".into())));
    assert_eq!(server.game().authed, [ann.conn()]);
}

#[test]
fn a_bad_token_at_the_upgrade_closes_4003_and_no_request_is_handled() {
    let mut server = TestServer::new(Guarded::default());
    let eve = server.connect_with_token(Encoding::Binary, "bad");
    let sent = server.send(eve, "whoami", &());
    server.run_jobs();
    assert_eq!(server.closed(eve), Some(CLOSE_AUTH_FAILED));
    assert!(server.answer::<Option<String>>(eve, sent).is_none());
    assert_eq!(server.game().handled, 0);
}

#[test]
fn guards_refuse_before_the_handler_runs_and_auth_in_band_opens_them() {
    let mut server = TestServer::new(Guarded::default());
    let bob = server.connect(Encoding::Binary);
    let id = server.send(bob, "secret", &());
    assert_eq!(code(server.answer::<u32>(bob, id)), error_code::UNAUTHENTICATED);
    let id = server.send(bob, ROUTE_AUTH, &"bad");
    server.run_jobs();
    assert_eq!(code(server.answer::<AuthReply>(bob, id)), error_code::UNAUTHENTICATED);
    let id = server.send(bob, ROUTE_AUTH, &"bob:player:-");
    server.run_jobs();
    let reply = server.answer::<AuthReply>(bob, id).expect("answered").expect("accepted");
    assert_eq!(
        (reply.user.as_str(), reply.roles.as_slice(), reply.expires_in_ms),
        ("bob", &["player".to_owned()][..], None)
    );
    assert_eq!(server.call::<_, u32>(bob, "secret", &()), Ok(42));
    let id = server.send(bob, "kick", &"ann");
    assert_eq!(code(server.answer::<u32>(bob, id)), error_code::FORBIDDEN);
    assert_eq!(server.game().handled, 1, "only `secret` ran");
}

#[test]
fn a_role_change_and_a_ban_apply_to_live_connections_at_once() {
    let mut server = TestServer::new(Guarded::default());
    let admin = server.connect_with_token(Encoding::Binary, "root:admin:-");
    let mallory = server.connect_with_token(Encoding::Binary, "mallory:player:-");
    server.run_jobs();
    // The admin bans mallory: her connection closes at once.
    assert_eq!(server.call::<_, u32>(admin, "kick", &"mallory"), Ok(1));
    assert_eq!(server.closed(mallory), Some(4010));
    // The admin loses the role (another connection changes it): the next request is refused.
    let other = server.connect(Encoding::Binary);
    assert_eq!(server.call::<_, u32>(other, "demote", &"root"), Ok(1));
    let id = server.send(admin, "kick", &"x");
    assert_eq!(code(server.answer::<u32>(admin, id)), error_code::FORBIDDEN);
}

#[test]
fn an_expired_identity_may_renew_within_the_grace_and_is_closed_after_it() {
    let mut server = TestServer::new(Guarded::default());
    let ann = server.connect_with_token(Encoding::Binary, "ann:player:10");
    server.run_jobs();
    // Expired at 10 s; the grace (30 s) lets requests through until 40 s.
    server.advance(Duration::from_secs(39));
    assert_eq!(server.call::<_, u32>(ann, "secret", &()), Ok(42), "within the grace");
    // Past the grace, the tick closes it (within the scan's second).
    server.advance(Duration::from_secs(2));
    assert_eq!(server.pushes::<()>(ann, ticksock_protocol::TOPIC_AUTH_EXPIRED).len(), 1);
    assert_eq!(server.closed(ann), Some(CLOSE_AUTH_EXPIRED));

    // Renewed in time, the connection goes on.
    let bob = server.connect_with_token(Encoding::Binary, "bob:player:10");
    server.run_jobs();
    server.advance(Duration::from_secs(20));
    let id = server.send(bob, ROUTE_AUTH, &"bob:player:3600");
    server.run_jobs();
    assert!(server.answer::<AuthReply>(bob, id).expect("answered").is_ok());
    server.advance(Duration::from_secs(60));
    assert_eq!(server.call::<_, u32>(bob, "secret", &()), Ok(42));
    assert_eq!(server.closed(bob), None);
}

#[test]
fn a_route_s_own_rate_refuses_without_closing() {
    let mut server = TestServer::new(Guarded::default());
    let c = server.connect(Encoding::Binary);
    assert_eq!(server.call::<_, ()>(c, "ping", &()), Ok(()));
    assert_eq!(server.call::<_, ()>(c, "ping", &()), Ok(()));
    let id = server.send(c, "ping", &());
    assert_eq!(code(server.answer::<()>(c, id)), error_code::RATE_LIMITED);
    server.advance(Duration::from_secs(1));
    assert_eq!(server.call::<_, ()>(c, "ping", &()), Ok(()), "refilled");
    assert_eq!(server.closed(c), None);
}

/// Over a real socket: the token in the query or in `Authorization: Bearer`, refused with 4003.
#[test]
fn over_a_socket_the_token_comes_by_query_or_header_and_a_bad_one_closes_4003() {
    let config =
        ticksock_server::Config { listen: "127.0.0.1:0".parse().expect("addr"), ..Default::default() };
    let server = ticksock_server::Server::start(config, Guarded::default()).expect("starts");
    let addr = server.local_addr();
    let open = |path: &str, bearer: Option<&str>| {
        let url = format!("ws://{addr}{path}");
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).expect("url");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "ticksock.v1".parse().expect("header"));
        if let Some(token) = bearer {
            request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
        }
        tungstenite::connect(request).expect("the upgrade is accepted").0
    };
    let close_code = |ws: &mut tungstenite::WebSocket<_>| loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    let mut by_query = open("/?token=bad", None);
    assert_eq!(close_code(&mut by_query), Some(CLOSE_AUTH_FAILED));
    let mut by_header = open("/", Some("bad"));
    assert_eq!(close_code(&mut by_header), Some(CLOSE_AUTH_FAILED));
    // A good token by header wins over a bad one in the query.
    let mut good = open("/?token=bad", Some("ann:player:-"));
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = good.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    }
    let still_open = loop {
        match good.read() {
            Ok(tungstenite::Message::Close(_)) => break false,
            Ok(_) => continue,
            Err(_) => break true, // the timeout: no close came
        }
    };
    assert!(still_open, "the header's good token is accepted");
    server.shutdown().expect("stops");
}
