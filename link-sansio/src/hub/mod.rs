//! `HubState`: the sans-IO hub (see issue: HubState).
