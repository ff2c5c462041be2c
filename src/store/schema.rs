//! The engine store's schema (one definition for SQLite and PostgreSQL; the migrations
//! under `migrations/{sqlite,postgres}` create it).

diesel::table! {
    api_tokens (id) {
        id -> Text,
        token_hash -> Text,
        role -> Text,
        label -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    requests (id) {
        id -> Text,
        kind -> Text,
        regime -> Text,
        state -> Text,
        channel -> Text,
        subject_ref -> Text,
        identities_enc -> Binary,
        identity_summary -> Text,
        received_at -> Timestamp,
        due_at -> Timestamp,
        acknowledge_by -> Nullable<Timestamp>,
        extended_due_at -> Nullable<Timestamp>,
        verified_at -> Nullable<Timestamp>,
        verification -> Nullable<Text>,
        completed_at -> Nullable<Timestamp>,
        state_reason -> Nullable<Text>,
        note -> Nullable<Text>,
        policy_digest -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        extension_reason -> Nullable<Text>,
        extension_notice -> Nullable<Text>,
        extended_at -> Nullable<Timestamp>,
        details_enc -> Nullable<Binary>,
    }
}

diesel::table! {
    request_events (request_id, seq) {
        request_id -> Text,
        seq -> Integer,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        from_state -> Nullable<Text>,
        to_state -> Text,
        reason -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    exports (request_id) {
        request_id -> Text,
        kind -> Text,
        created_at -> Timestamp,
        table_count -> Integer,
        row_count -> BigInt,
        digest -> Text,
        payload_enc -> Nullable<Binary>,
        file_id -> Nullable<Text>,
        json_size -> Nullable<BigInt>,
        csv_digest -> Nullable<Text>,
        csv_size -> Nullable<BigInt>,
        tables_json -> Text,
        expires_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    export_links (id) {
        id -> Text,
        token_hash -> Text,
        request_id -> Text,
        export_file_id -> Nullable<Text>,
        purpose -> Text,
        format -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        uses -> Integer,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        object -> Text,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

diesel::table! {
    holds (id) {
        id -> Text,
        scope -> Text,
        subject_refs -> Nullable<Text>,
        identities_enc -> Nullable<Binary>,
        identity_summary -> Nullable<Text>,
        table_name -> Nullable<Text>,
        row_keys -> Nullable<Text>,
        matter -> Text,
        reason -> Text,
        ground -> Text,
        issued_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        released_at -> Nullable<Timestamp>,
        released_by -> Nullable<Text>,
        release_reason -> Nullable<Text>,
    }
}

diesel::table! {
    plans (request_id) {
        request_id -> Text,
        created_at -> Timestamp,
        digest -> Text,
        summary -> Text,
        plan_enc -> Binary,
    }
}

diesel::table! {
    erasure_steps (request_id, source) {
        request_id -> Text,
        source -> Text,
        status -> Text,
        result -> Text,
        finished_at -> Timestamp,
    }
}

diesel::table! {
    subject_keys (request_id) {
        request_id -> Text,
        key_enc -> Nullable<Binary>,
        created_at -> Timestamp,
        shredded_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        public_key -> Text,
        secret_enc -> Binary,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    certificates (id) {
        id -> Text,
        kind -> Text,
        request_id -> Nullable<Text>,
        run_id -> Nullable<Text>,
        kid -> Text,
        issued_at -> Timestamp,
        jws -> Text,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        hash -> Text,
        signed_at -> Timestamp,
        kid -> Text,
        jws -> Text,
    }
}

diesel::joinable!(request_events -> requests (request_id));
diesel::joinable!(exports -> requests (request_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    requests,
    request_events,
    exports,
    audit_log,
    audit_head,
    holds,
    plans,
    erasure_steps,
    subject_keys,
    signing_keys,
    certificates,
    audit_checkpoints,
    web_sessions,
    jobs,
    notifications,
);

diesel::table! {
    retention_runs (id) {
        id -> Text,
        rule -> Text,
        status -> Text,
        trigger_kind -> Text,
        at_time -> Timestamp,
        cutoff -> Timestamp,
        policy_digest -> Text,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        heartbeat_at -> Timestamp,
        owner -> Text,
        last_key -> Nullable<Text>,
        pending -> Nullable<Text>,
        batches -> Integer,
        rows_deleted -> BigInt,
        rows_anonymized -> BigInt,
        rows_held -> BigInt,
        per_table -> Text,
        longest_batch_ms -> BigInt,
        error -> Nullable<Text>,
        certificate_id -> Nullable<Text>,
    }
}

diesel::table! {
    retention_leases (rule) {
        rule -> Text,
        owner -> Text,
        run_id -> Nullable<Text>,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    web_sessions (id) {
        id -> Text,
        token_id -> Text,
        role -> Text,
        label -> Text,
        csrf -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        target -> Text,
        args -> Text,
        dedupe_key -> Nullable<Text>,
        state -> Text,
        run_after -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        request_id -> Text,
        recipient -> Text,
        event -> Text,
        url -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        http_status -> Nullable<Integer>,
        ack_id -> Nullable<Text>,
        ack_body_sha256 -> Nullable<Text>,
        created_at -> Timestamp,
        acknowledged_at -> Nullable<Timestamp>,
        settled_at -> Nullable<Timestamp>,
    }
}
