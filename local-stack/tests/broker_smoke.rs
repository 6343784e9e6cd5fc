use std::time::{Duration, Instant};

use local_stack::{
    broker::{KafkaBroker, KafkaBrokerOptions},
    idp::{IdentityProvider, IdpOptions},
};

#[tokio::test]
async fn smoke() {
    let idp = IdentityProvider::start(IdpOptions {
        clients: vec![("svc".into(), "s3cret".into())],
        ..IdpOptions::default()
    })
    .unwrap();
    let t = Instant::now();
    let broker = KafkaBroker::start(KafkaBrokerOptions {
        jwks_url: Some(idp.jwks_url()),
        token_url: Some(idp.token_url()),
        plain_users: vec![("alice".into(), "pw".into())],
        ..KafkaBrokerOptions::default()
    })
    .await
    .unwrap();
    eprintln!("started in {:?}: {broker:?}", t.elapsed());
    broker.create_topic("t1", 3).await.unwrap();
    let t = Instant::now();
    broker
        .allow(vec![local_stack::broker::AclRule::allow(
            "User:svc",
            local_stack::broker::AclResource::Topic,
            "t1",
            local_stack::broker::AclOperation::Write,
        )])
        .await
        .unwrap();
    eprintln!("acl in {:?}", t.elapsed());
    let t = Instant::now();
    broker.stop().await.unwrap();
    eprintln!("stopped in {:?}", t.elapsed());
    broker.restart().await.unwrap();
    eprintln!("restarted in {:?}", t.elapsed());
    let _ = Duration::ZERO;
    eprintln!("{}", broker.log_tail(5));
}
