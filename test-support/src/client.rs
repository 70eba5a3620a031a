//! The test's own ZooKeeper client, and what the tests look at through it: the prefix data,
//! the children of a folder (queue items, leases), awaited with watches, and whole subtrees.

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode};

use super::util::PATIENCE;

/// A plain client for the test's own look at ZooKeeper. Its session is long, so that a server
/// slowed by a loaded machine does not make the test's own look fail (the library gives up on
/// a connection silent for 2/5 of the session timeout).
pub async fn zk(connect: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(connect)
        .await
        .expect("test client connects")
}

/// Creates the prefix node (with parents) if need be and sets its data: the groups and the
/// resources a test's runs read.
pub async fn set_prefix_data(client: &Client, prefix: &str, data: &str) {
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(prefix, &folder).await.unwrap();
    client
        .set_data(prefix, data.as_bytes(), None)
        .await
        .unwrap();
}

/// Fills the prefix of `job` as a big fleet would: `locks` lock nodes and `items` queue items
/// spread over `resources` resources (`res0`, `res1`, ...), with a lease of each, all with
/// `"{fqdn} {pid}"` data and many requests in flight. Persistent, unlike real holders', so that
/// the client can leave before what reads them is measured; they are read the same.
pub async fn fill_prefix(
    client: &Client,
    job: &super::Job,
    locks: usize,
    items: usize,
    resources: usize,
) {
    let names: Vec<String> = (0..resources).map(|r| format!("res{r}")).collect();
    set_prefix_data(
        client,
        &job.prefix,
        &serde_json::json!({"resources": names}).to_string(),
    )
    .await;
    let folder = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for r in &names {
        client.mkdir(&job.queue_path(r), &folder).await.unwrap();
        client.mkdir(&job.leases_path(r), &folder).await.unwrap();
    }
    client.mkdir(&job.locks_path(), &folder).await.unwrap();
    let locks: Vec<String> = (0..locks)
        .map(|i| job.lock_path(&format!("job{i}")))
        .collect();
    let queued: Vec<String> = (0..items)
        .map(|i| format!("{}/task{i}-", job.queue_path(&names[i % resources])))
        .collect();
    let leases: Vec<String> = names
        .iter()
        .map(|r| format!("{}/1_4_", job.leases_path(r)))
        .collect();
    create_all(client, &locks, false).await;
    create_all(client, &queued, true).await;
    create_all(client, &leases, true).await;
}

/// Creates `paths` (sequential if asked), persistent, with `"{fqdn} {pid}"` data.
async fn create_all(client: &Client, paths: &[String], sequential: bool) {
    let mode = if sequential {
        CreateMode::PersistentSequential
    } else {
        CreateMode::Persistent
    };
    let options = mode.with_acls(Acls::anyone_all());
    for chunk in paths.chunks(500) {
        let creates = chunk.iter().enumerate().map(|(i, p)| {
            let data = format!("host{}.example {}", i % 97, 1000 + i);
            let options = &options;
            async move { client.create(p, data.as_bytes(), options).await }
        });
        for created in futures::future::join_all(creates).await {
            created.expect("create");
        }
    }
}

/// The sequence number ZooKeeper appended to a child's name.
pub fn seq(name: &str) -> u64 {
    name[name.rfind(['-', '_']).unwrap() + 1..].parse().unwrap()
}

/// The children of `path` in sequence order; none if it does not exist.
pub async fn children(client: &Client, path: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match client.list_children(path).await {
            Ok(mut c) => {
                c.sort_by_key(|n| seq(n));
                return c;
            }
            Err(zookeeper_client::Error::NoNode) => return Vec::new(),
            // The library reconnects with the same session; a read can be asked again.
            Err(
                zookeeper_client::Error::ConnectionLoss
                | zookeeper_client::Error::Timeout
                | zookeeper_client::Error::Custom(_),
            ) if tokio::time::Instant::now() < deadline => {}
            Err(e) => panic!("list {path}: {e}"),
        }
    }
}

/// Waits, by watching, until the children of `path` satisfy `cond`; returns them in sequence
/// order. A missing `path` counts as having no children.
pub async fn await_children(
    client: &Client,
    path: &str,
    what: &str,
    mut cond: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (mut kids, watcher) = match client.get_and_watch_children(path).await {
            Ok((kids, _, watcher)) => (kids, watcher),
            Err(zookeeper_client::Error::NoNode) => {
                let (stat, watcher) = client.check_and_watch_stat(path).await.unwrap();
                if stat.is_some() {
                    continue;
                }
                (Vec::new(), watcher)
            }
            Err(e) => panic!("watch {path}: {e}"),
        };
        kids.sort_by_key(|n| seq(n));
        if cond(&kids) {
            return kids;
        }
        if tokio::time::timeout_at(deadline, watcher.changed())
            .await
            .is_err()
        {
            panic!("timed out waiting until {what}; children of {path}: {kids:?}");
        }
    }
}

/// Whether a queue holds an item of task `lock` (`LOCK-SEQUENCE`).
pub fn has_item(kids: &[String], lock: &str) -> bool {
    kids.iter().any(|k| is_item_of(k, lock))
}

fn is_item_of(kid: &str, lock: &str) -> bool {
    kid.strip_prefix(lock)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
}

/// Waits until the queue at `queue` holds an item of task `lock`; returns the item's path.
pub async fn await_item(client: &Client, queue: &str, lock: &str) -> String {
    let kids = await_children(client, queue, &format!("{lock} has queued"), |kids| {
        has_item(kids, lock)
    })
    .await;
    let item = kids.iter().find(|k| is_item_of(k, lock)).unwrap();
    format!("{queue}/{item}")
}

/// Every znode under `root`, `root` included (none if it does not exist).
pub async fn tree(client: &Client, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        let Ok(kids) = client.list_children(&path).await else {
            continue;
        };
        for child in kids {
            todo.push(format!("{path}/{child}"));
        }
        found.push(path);
    }
    found
}

/// Every znode under `root` whose data names process `pid` (`"{fqdn} {pid}"`): what a run of
/// switchman with that pid left behind.
pub async fn nodes_of(client: &Client, root: &str, pid: u32) -> Vec<String> {
    let suffix = format!(" {pid}");
    let mut found = Vec::new();
    for path in tree(client, root).await {
        if let Ok((data, _)) = client.get_data(&path).await
            && String::from_utf8_lossy(&data).ends_with(&suffix)
        {
            found.push(path);
        }
    }
    found
}

/// Asserts that the run with switchman pid `pid` has no node left under `root`.
pub async fn assert_left_nothing(client: &Client, root: &str, pid: u32) {
    assert_eq!(
        nodes_of(client, root, pid).await,
        Vec::<String>::new(),
        "run {pid}'s nodes"
    );
}

/// A job on the shared server whose prefix znode's data lists `resources`, and a test client to
/// look at it with.
pub async fn leased_job(
    name: &str,
    extra: serde_json::Value,
    resources: &[&str],
) -> (super::Job, Client) {
    let zk_hosts = super::shared_ensemble().connect_string();
    let job = super::Job::new(name, &zk_hosts, extra);
    let client = zk(&zk_hosts).await;
    let data = serde_json::json!({ "resources": resources }).to_string();
    set_prefix_data(&client, &job.prefix, &data).await;
    (job, client)
}
