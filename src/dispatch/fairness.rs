//! Fairness inside an account: round robin over principals.
//!
//! Each principal's queued copies form their own queue, and the dispatcher serves the heads of those queues in
//! turn, the principal served least recently first. A team that queues a thousand copies therefore delays another
//! team's single copy by at most one copy per other waiting principal, not by the thousand.

use std::collections::HashMap;

use crate::store::CopyJob;

#[derive(Debug, Default)]
pub struct RoundRobin {
    /// When each principal with queued work was last served, as a serving count; absent = not yet.
    last_served: HashMap<String, u64>,
    served: u64,
}

impl RoundRobin {
    /// Orders the heads of the principals' queues: never served (or not since their queue last emptied) first, then
    /// least recently served; ties by the older job. Forgets principals whose queue is empty.
    pub fn order(&mut self, mut heads: Vec<CopyJob>) -> Vec<CopyJob> {
        self.last_served.retain(|principal, _| heads.iter().any(|job| &job.principal == principal));
        heads.sort_by_key(|job| (self.last_served.get(&job.principal).copied(), job.created_at, job.id));
        heads
    }

    pub fn served(&mut self, principal: &str) {
        self.served += 1;
        self.last_served.insert(principal.to_owned(), self.served);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(principal: &str, age_secs: i64) -> CopyJob {
        let mut job = crate::store::jobs::tests_support::job();
        job.principal = principal.into();
        job.created_at = chrono::Utc::now() - chrono::Duration::seconds(age_secs);
        job
    }

    #[test]
    fn a_single_copy_waits_for_one_turn_not_for_the_batch() {
        let mut rr = RoundRobin::default();
        // "batch" queued long before "single", and is served first...
        let order = rr.order(vec![head("single", 1), head("batch", 100)]);
        assert_eq!(order[0].principal, "batch");
        rr.served("batch");
        // ...but then it is single's turn, though batch's next copy is older still.
        let order = rr.order(vec![head("single", 1), head("batch", 99)]);
        assert_eq!(order[0].principal, "single");
        rr.served("single");
        let order = rr.order(vec![head("batch", 98)]);
        assert_eq!(order[0].principal, "batch");
    }

    #[test]
    fn turns_rotate_among_many() {
        let mut rr = RoundRobin::default();
        let mut served = Vec::new();
        for _ in 0..6 {
            let next = rr.order(vec![head("a", 30), head("b", 20), head("c", 10)]).remove(0);
            rr.served(&next.principal);
            served.push(next.principal);
        }
        assert_eq!(served, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn principals_with_nothing_queued_are_forgotten() {
        let mut rr = RoundRobin::default();
        rr.served("gone");
        rr.order(vec![head("here", 1)]);
        assert!(!rr.last_served.contains_key("gone"));
    }
}
