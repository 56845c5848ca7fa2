//! Roles of standalone users and the one table of what each may do.

use serde::{Deserialize, Serialize};

/// What a user is to a site. Stored as its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Reads, and edits rules and threat triage.
    Analyst,
    /// Everything, including users, privacy and billing.
    Owner,
}

/// Something a request wants to do; `Role::allows` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read statistics, sessions, threats, settings.
    Read,
    /// Enable, shadow or tune detection rules.
    EditRules,
    /// Mark threats reviewed, dismiss or escalate them.
    TriageThreats,
    /// Invite, remove users and change their roles.
    ManageUsers,
    /// Change the privacy mode and retention, delete a visitor's data.
    ManagePrivacy,
    /// Change the plan.
    ManageBilling,
    /// Change the alert policy and channels, send test alerts, retry dead letters.
    ManageAlerts,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Owner];

    /// The permission table: viewers read, analysts also edit rules and alerts and triage, owners also
    /// manage users, privacy and billing.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::EditRules | Action::TriageThreats | Action::ManageAlerts => {
                matches!(self, Role::Analyst | Role::Owner)
            }
            Action::ManageUsers | Action::ManagePrivacy | Action::ManageBilling => self == Role::Owner,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == raw.trim().to_ascii_lowercase())
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(Role::Viewer, Action::Read, true)]
    #[case(Role::Viewer, Action::EditRules, false)]
    #[case(Role::Viewer, Action::TriageThreats, false)]
    #[case(Role::Viewer, Action::ManageUsers, false)]
    #[case(Role::Viewer, Action::ManagePrivacy, false)]
    #[case(Role::Viewer, Action::ManageBilling, false)]
    #[case(Role::Viewer, Action::ManageAlerts, false)]
    #[case(Role::Analyst, Action::Read, true)]
    #[case(Role::Analyst, Action::EditRules, true)]
    #[case(Role::Analyst, Action::TriageThreats, true)]
    #[case(Role::Analyst, Action::ManageUsers, false)]
    #[case(Role::Analyst, Action::ManagePrivacy, false)]
    #[case(Role::Analyst, Action::ManageBilling, false)]
    #[case(Role::Analyst, Action::ManageAlerts, true)]
    #[case(Role::Owner, Action::Read, true)]
    #[case(Role::Owner, Action::EditRules, true)]
    #[case(Role::Owner, Action::TriageThreats, true)]
    #[case(Role::Owner, Action::ManageUsers, true)]
    #[case(Role::Owner, Action::ManagePrivacy, true)]
    #[case(Role::Owner, Action::ManageBilling, true)]
    #[case(Role::Owner, Action::ManageAlerts, true)]
    fn each_role_allows_exactly_its_actions(#[case] role: Role, #[case] action: Action, #[case] allowed: bool) {
        assert_eq!(role.allows(action), allowed);
    }

    #[rstest]
    #[case("owner", Some(Role::Owner))]
    #[case(" Analyst ", Some(Role::Analyst))]
    #[case("VIEWER", Some(Role::Viewer))]
    #[case("admin", None)]
    #[case("", None)]
    fn roles_parse_from_their_names(#[case] raw: &str, #[case] expected: Option<Role>) {
        assert_eq!(Role::parse(raw), expected);
    }

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
