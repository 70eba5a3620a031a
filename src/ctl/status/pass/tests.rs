use super::*;

#[test]
fn filters_decide_which_changes_matter() {
    let paths = Paths::new("/p");
    let all = Filter::default();
    for path in [
        "/p",
        "/p/locks/a",
        "/p/queues/db/a-0000000001",
        "/p/semaphores/db/leases/1_2_0000000001",
    ] {
        assert!(all.shows(&paths, path), "{path}");
    }
    assert!(!all.shows(&paths, "/p/semaphores/db/lock/acquire-0000000001"));
    assert!(all.shows(&paths, "/p/waiters/a/wait-0000000001"));
    assert!(all.shows(&paths, "/p/runs/a"));

    let job = Filter {
        lock: Some("a".into()),
        resource: None,
    };
    assert!(job.shows(&paths, "/p/locks/a"));
    assert!(job.shows(&paths, "/p/queues/db/a-0000000001"));
    assert!(!job.shows(&paths, "/p/locks/b"));
    assert!(job.shows(&paths, "/p/waiters/a/wait-0000000001"));
    assert!(!job.shows(&paths, "/p/runs/b"));
    assert!(!job.shows(&paths, "/p/queues/db/b-0000000001"));
    assert!(!job.shows(&paths, "/p/semaphores/db/leases/1_2_0000000001"));
    assert!(!job.shows(&paths, "/p"));

    let db = Filter {
        lock: None,
        resource: Some("db".into()),
    };
    assert!(db.shows(&paths, "/p/queues/db/b-0000000001"));
    assert!(db.shows(&paths, "/p/semaphores/db/leases/1_2_0000000001"));
    assert!(!db.shows(&paths, "/p/semaphores/cpu/leases/1_2_0000000001"));
    assert!(!db.shows(&paths, "/p/locks/a"));
    assert!(!db.shows(&paths, "/p/runs/a"));

    let root = Paths::new("/");
    assert!(all.shows(&root, "/locks/a"));
}

#[test]
fn leases_are_read_from_their_names() {
    let stat = Stat {
        czxid: 1,
        mzxid: 1,
        pzxid: 1,
        ctime: 0,
        mtime: 0,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 3,
        num_children: 0,
    };
    let l = lease(("2_5_0000000007".into(), b"h 1".to_vec(), stat));
    assert_eq!((l.count, l.total, l.seq), (Some(2), Some(5), Some(7)));
    let junk = lease(("junk".into(), Vec::new(), stat));
    assert_eq!((junk.count, junk.total, junk.seq), (None, None, None));
}
