//! A transaction-mode connection pooler on loopback, the way Neon's pooled endpoint
//! (PgBouncer >= 1.21 in `pool_mode = transaction` with `max_prepared_statements`) treats
//! its clients: a client holds a server connection only from its first message until the
//! server says it is idle outside a transaction, then the server goes back to the pool and
//! the client's next transaction may run on any other one. Nothing a client leaves in its
//! session (a `SET`, a session advisory lock, a temporary table) follows it.
//!
//! Why our own: Debian's PgBouncer (1.18) cannot carry sqlx's named prepared statements,
//! and no 1.21+ is installable here. This one does what 1.21 does for them: it remembers
//! each client's `Parse` by name, prepares the statement under a pooler-wide name on
//! whichever server the client lands on (once per server), renames `Bind`/`Describe`, and
//! answers a client's `Close` of a statement itself. It is harsher than PgBouncer in one
//! way on purpose: an idle server is taken at random, so consecutive transactions of one
//! client rarely share a server and any session state we relied on would show.
//!
//! Scope: trust authentication to the upstream server (what `scripts/lib.sh` sets up), the
//! simple and extended query protocols (no COPY, no cancel requests), one database.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Semaphore, mpsc},
};

/// A running pooler; dropping it stops accepting clients.
pub struct Pooler {
    /// Where clients connect.
    pub address: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

/// What the pooler did, for tests to check that it really multiplexed.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Times a client was given a server connection (about one per transaction).
    pub assignments: u64,
    /// Statements prepared on a server because a client that prepared them elsewhere
    /// landed there.
    pub reprepared: u64,
}

impl Drop for Pooler {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Pooler {
    /// Starts a pooler with `servers` connections to `upstream` (host, port, user,
    /// database), all opened now.
    pub async fn start(
        upstream: SocketAddr,
        user: &str,
        database: &str,
        servers: usize,
    ) -> anyhow::Result<Self> {
        let mut idle = Vec::with_capacity(servers);
        let mut parameters = Vec::new();
        for _ in 0..servers {
            let (server, status) = Server::connect(upstream, user, database).await?;
            parameters = status;
            idle.push(server);
        }
        let shared = Arc::new(Shared {
            idle: Mutex::new(idle),
            available: Semaphore::new(servers),
            names: Mutex::new(HashMap::new()),
            parameters,
            upstream: (upstream, user.to_owned(), database.to_owned()),
            assignments: AtomicU64::new(0),
            reprepared: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accepting.clone();
                tokio::spawn(async move {
                    // A client that breaks the protocol only loses its own connection.
                    let _ = Client::serve(shared, stream).await;
                });
            }
        });
        Ok(Self {
            address,
            shared,
            accept,
        })
    }

    /// Starts a pooler in front of the database `db` connects to.
    pub async fn in_front_of(db: &sqlx::PgPool, servers: usize) -> anyhow::Result<Self> {
        let options = db.connect_options();
        let host = match options.get_host() {
            "localhost" => "127.0.0.1",
            host => host,
        };
        let upstream = SocketAddr::new(host.parse()?, options.get_port());
        let database = options
            .get_database()
            .context("the test pool names its database")?;
        Self::start(upstream, options.get_username(), database, servers).await
    }

    /// A pool of `max` client connections through this pooler to the same database as
    /// `db`, with the settings a function uses.
    pub fn client_pool(&self, db: &sqlx::PgPool, max: u32) -> sqlx::PgPool {
        let options = (*db.connect_options())
            .clone()
            .host("127.0.0.1")
            .port(self.address.port());
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_lazy_with(options)
    }

    /// What the pooler did so far.
    pub fn stats(&self) -> Stats {
        Stats {
            assignments: self.shared.assignments.load(Ordering::Relaxed),
            reprepared: self.shared.reprepared.load(Ordering::Relaxed),
        }
    }
}

/// A statement as the server knows it: its query and parameter types.
type StatementKey = (Vec<u8>, Vec<u8>);

struct Shared {
    idle: Mutex<Vec<Server>>,
    /// One permit per idle server.
    available: Semaphore,
    /// Pooler-wide statement names by (query, parameter types).
    names: Mutex<HashMap<StatementKey, String>>,
    /// The server's `ParameterStatus` messages, replayed to every client at start-up.
    parameters: Vec<Message>,
    upstream: (SocketAddr, String, String),
    assignments: AtomicU64,
    reprepared: AtomicU64,
}

impl Shared {
    async fn acquire(&self) -> Server {
        self.available
            .acquire()
            .await
            .expect("the pooler never closes its semaphore")
            .forget();
        self.assignments.fetch_add(1, Ordering::Relaxed);
        let mut idle = self.idle.lock().expect("the idle list is never poisoned");
        // At random, so one client's consecutive transactions spread over the servers.
        let pick = (self.assignments.load(Ordering::Relaxed) as usize * 7919
            + std::process::id() as usize)
            % idle.len();
        idle.swap_remove(pick)
    }

    fn release(&self, server: Server) {
        self.idle
            .lock()
            .expect("the idle list is never poisoned")
            .push(server);
        self.available.add_permits(1);
    }

    /// A server left mid-transaction by a client that went away is closed; a fresh one
    /// takes its place.
    fn replace(self: &Arc<Self>) {
        let shared = self.clone();
        tokio::spawn(async move {
            let (upstream, user, database) = &shared.upstream;
            if let Ok((server, _)) = Server::connect(*upstream, user, database).await {
                shared.release(server);
            }
        });
    }

    fn statement_name(&self, query: &[u8], types: &[u8]) -> String {
        let mut names = self.names.lock().expect("the name map is never poisoned");
        let next = names.len();
        names
            .entry((query.to_vec(), types.to_vec()))
            .or_insert_with(|| format!("pooler_{next}"))
            .clone()
    }
}

/// One protocol message: its type byte and its body (without the length).
#[derive(Clone)]
struct Message {
    tag: u8,
    body: Vec<u8>,
}

impl Message {
    fn new(tag: u8, body: Vec<u8>) -> Self {
        Self { tag, body }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        out.extend_from_slice(&(self.body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(&self.body);
    }
}

async fn read_message(reader: &mut OwnedReadHalf) -> anyhow::Result<Message> {
    let tag = reader.read_u8().await?;
    let len = reader.read_i32().await?;
    if !(4..=1 << 30).contains(&len) {
        bail!("a message of {len} bytes");
    }
    let mut body = vec![0; len as usize - 4];
    reader.read_exact(&mut body).await?;
    Ok(Message { tag, body })
}

/// Reads messages into a channel, so the session can wait on both sides at once.
fn pump(mut reader: OwnedReadHalf) -> mpsc::UnboundedReceiver<Message> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(message) = read_message(&mut reader).await {
            if tx.send(message).is_err() {
                break;
            }
        }
    });
    rx
}

/// Splits a NUL-terminated string off the front of `bytes`.
fn cstr(bytes: &[u8]) -> anyhow::Result<(&[u8], &[u8])> {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .context("an unterminated string")?;
    Ok((&bytes[..end], &bytes[end + 1..]))
}

fn with_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

struct Server {
    writer: OwnedWriteHalf,
    messages: mpsc::UnboundedReceiver<Message>,
    /// Pooler-wide statement names prepared on this connection.
    prepared: HashSet<String>,
}

impl Server {
    async fn connect(
        address: SocketAddr,
        user: &str,
        database: &str,
    ) -> anyhow::Result<(Self, Vec<Message>)> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = stream.into_split();
        let mut startup = 196_608_i32.to_be_bytes().to_vec();
        for (key, value) in [
            ("user", user),
            ("database", database),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("TimeZone", "UTC"),
            ("extra_float_digits", "2"),
            ("application_name", "test-pooler"),
        ] {
            with_cstr(&mut startup, key.as_bytes());
            with_cstr(&mut startup, value.as_bytes());
        }
        startup.push(0);
        let mut packet = (startup.len() as i32 + 4).to_be_bytes().to_vec();
        packet.extend_from_slice(&startup);
        writer.write_all(&packet).await?;
        let mut parameters = Vec::new();
        loop {
            let message = read_message(&mut reader).await?;
            match message.tag {
                b'R' if message.body[..4] != [0, 0, 0, 0] => {
                    bail!("the upstream server asks for a password; the pooler needs trust")
                }
                b'S' => parameters.push(message),
                b'E' => bail!(
                    "the upstream server refused: {}",
                    String::from_utf8_lossy(&message.body)
                ),
                b'Z' => break,
                _ => {}
            }
        }
        let server = Self {
            writer,
            messages: pump(reader),
            prepared: HashSet::new(),
        };
        Ok((server, parameters))
    }
}

/// What the client is owed for each message sent to the server, in order.
enum Owed {
    /// The server's answer to a client message, forwarded until `done` says it ended.
    /// `parse` names the statement a `Parse` prepares (forgotten if it fails).
    Forward { done: Done, parse: Option<String> },
    /// The answer to a `Parse` the pooler added: swallowed unless it is an error.
    Swallow { statement: String },
    /// An answer the pooler gives itself (a statement the server already has).
    Fake(Message),
}

/// Which server message ends the answer to a client message.
#[derive(Clone, Copy, PartialEq)]
enum Done {
    Tag(u8),
    /// `Describe`: `NoData` or `RowDescription`.
    Describe,
    /// `Execute`: `CommandComplete`, `EmptyQueryResponse` or `PortalSuspended`.
    Execute,
    /// `Sync` and simple `Query`: `ReadyForQuery`.
    Ready,
}

impl Done {
    fn ends_with(self, tag: u8) -> bool {
        match self {
            Done::Tag(t) => t == tag,
            Done::Describe => tag == b'n' || tag == b'T',
            Done::Execute => matches!(tag, b'C' | b'I' | b's'),
            Done::Ready => tag == b'Z',
        }
    }
}

struct Client {
    shared: Arc<Shared>,
    writer: OwnedWriteHalf,
    /// The client's named statements: (query, parameter types).
    statements: HashMap<Vec<u8>, StatementKey>,
    owed: VecDeque<Owed>,
}

impl Client {
    async fn serve(shared: Arc<Shared>, stream: TcpStream) -> anyhow::Result<()> {
        stream.set_nodelay(true)?;
        let (mut reader, writer) = stream.into_split();
        let mut client = Client {
            shared,
            writer,
            statements: HashMap::new(),
            owed: VecDeque::new(),
        };
        client.start_up(&mut reader).await?;
        let mut messages = pump(reader);
        while let Some(first) = messages.recv().await {
            if first.tag == b'X' {
                break;
            }
            let mut server = client.shared.acquire().await;
            let finished = client.transaction(&mut server, first, &mut messages).await;
            match finished {
                Ok(true) => client.shared.release(server),
                // The client left mid-transaction, or a side broke: the server's state is
                // unknown, so it is closed and replaced.
                Ok(false) | Err(_) => {
                    drop(server);
                    client.shared.replace();
                    break;
                }
            }
        }
        Ok(())
    }

    async fn start_up(&mut self, reader: &mut OwnedReadHalf) -> anyhow::Result<()> {
        loop {
            let len = reader.read_i32().await?;
            if !(8..=10_000).contains(&len) {
                bail!("a start-up packet of {len} bytes");
            }
            let mut body = vec![0; len as usize - 4];
            reader.read_exact(&mut body).await?;
            match i32::from_be_bytes(body[..4].try_into()?) {
                // SSLRequest, GSSENCRequest: not here.
                80_877_103 | 80_877_104 => self.writer.write_all(b"N").await?,
                196_608 => break,
                code => bail!("start-up code {code}"),
            }
        }
        let mut out = Vec::new();
        Message::new(b'R', 0_i32.to_be_bytes().to_vec()).encode(&mut out);
        for parameter in &self.shared.parameters {
            parameter.encode(&mut out);
        }
        Message::new(b'K', [0_u8; 8].to_vec()).encode(&mut out);
        Message::new(b'Z', b"I".to_vec()).encode(&mut out);
        self.writer.write_all(&out).await?;
        Ok(())
    }

    /// Carries one transaction (or one implicit one) on `server`, starting with `first`.
    /// Ok(true) once the server is idle outside a transaction with nothing owed; Ok(false)
    /// when the client left before that.
    async fn transaction(
        &mut self,
        server: &mut Server,
        first: Message,
        messages: &mut mpsc::UnboundedReceiver<Message>,
    ) -> anyhow::Result<bool> {
        self.on_client_message(server, first).await?;
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Some(message) if message.tag != b'X' => self.on_client_message(server, message).await?,
                    _ => return Ok(false),
                },
                message = server.messages.recv() => {
                    let message = message.context("the server closed its connection")?;
                    let idle = message.tag == b'Z' && message.body == b"I";
                    self.on_server_message(server, message).await?;
                    if idle && self.owed.is_empty() {
                        return Ok(true);
                    }
                }
            }
        }
    }

    async fn on_client_message(
        &mut self,
        server: &mut Server,
        message: Message,
    ) -> anyhow::Result<()> {
        let mut out = Vec::new();
        match message.tag {
            b'P' => {
                let (name, rest) = cstr(&message.body)?;
                let (query, types) = cstr(rest)?;
                if name.is_empty() {
                    self.forward(&mut out, message.clone(), Done::Tag(b'1'), None);
                } else {
                    self.statements
                        .insert(name.to_vec(), (query.to_vec(), types.to_vec()));
                    let statement = self.shared.statement_name(query, types);
                    if server.prepared.contains(&statement) {
                        self.owed
                            .push_back(Owed::Fake(Message::new(b'1', Vec::new())));
                    } else {
                        server.prepared.insert(statement.clone());
                        let parse = parse_message(&statement, query, types);
                        self.forward(&mut out, parse, Done::Tag(b'1'), Some(statement));
                    }
                }
            }
            b'B' => {
                let (portal, rest) = cstr(&message.body)?;
                let (name, rest) = cstr(rest)?;
                let mut body = Vec::new();
                with_cstr(&mut body, portal);
                let statement = self.on_server(server, &mut out, name)?;
                with_cstr(&mut body, statement.as_bytes());
                body.extend_from_slice(rest);
                self.forward(&mut out, Message::new(b'B', body), Done::Tag(b'2'), None);
            }
            b'D' if message.body.first() == Some(&b'S') => {
                let (name, _) = cstr(&message.body[1..])?;
                let mut body = vec![b'S'];
                let statement = self.on_server(server, &mut out, name)?;
                with_cstr(&mut body, statement.as_bytes());
                self.forward(&mut out, Message::new(b'D', body), Done::Describe, None);
            }
            b'D' => self.forward(&mut out, message, Done::Describe, None),
            b'C' if message.body.first() == Some(&b'S') && message.body.get(1) != Some(&0) => {
                // Other clients may use the server's statement: only this client forgets it.
                let (name, _) = cstr(&message.body[1..])?;
                self.statements.remove(name);
                self.owed
                    .push_back(Owed::Fake(Message::new(b'3', Vec::new())));
            }
            b'C' => self.forward(&mut out, message, Done::Tag(b'3'), None),
            b'E' => self.forward(&mut out, message, Done::Execute, None),
            b'S' | b'Q' => self.forward(&mut out, message, Done::Ready, None),
            // Flush, and anything else that has no answer of its own.
            _ => message.encode(&mut out),
        }
        server.writer.write_all(&out).await?;
        self.pay_fakes().await
    }

    /// The server-side name of the client's statement `name`, preparing it on `server`
    /// first if this server has not seen it.
    fn on_server(
        &mut self,
        server: &mut Server,
        out: &mut Vec<u8>,
        name: &[u8],
    ) -> anyhow::Result<String> {
        if name.is_empty() {
            return Ok(String::new());
        }
        let (query, types) = self
            .statements
            .get(name)
            .context("a statement the client never prepared")?;
        let statement = self.shared.statement_name(query, types);
        if server.prepared.insert(statement.clone()) {
            self.shared.reprepared.fetch_add(1, Ordering::Relaxed);
            parse_message(&statement, query, types).encode(out);
            self.owed.push_back(Owed::Swallow {
                statement: statement.clone(),
            });
        }
        Ok(statement)
    }

    fn forward(&mut self, out: &mut Vec<u8>, message: Message, done: Done, parse: Option<String>) {
        message.encode(out);
        self.owed.push_back(Owed::Forward { done, parse });
    }

    async fn on_server_message(
        &mut self,
        server: &mut Server,
        message: Message,
    ) -> anyhow::Result<()> {
        // Notices, parameter changes and notifications belong to no request.
        if matches!(message.tag, b'N' | b'S' | b'A') {
            return self.send(&message).await;
        }
        let error = message.tag == b'E';
        match self.owed.front() {
            Some(Owed::Swallow { .. }) => {
                if error {
                    self.send(&message).await?;
                    self.skip_to_sync(server);
                } else {
                    self.owed.pop_front();
                }
            }
            Some(Owed::Forward { done, .. }) => {
                let done = *done;
                self.send(&message).await?;
                if done == Done::Ready {
                    if message.tag == b'Z' {
                        self.owed.pop_front();
                    }
                } else if error {
                    self.skip_to_sync(server);
                } else if done.ends_with(message.tag) {
                    self.owed.pop_front();
                }
            }
            // Fakes are paid as soon as they reach the front.
            Some(Owed::Fake(_)) | None => bail!("an unexpected server message {}", message.tag),
        }
        self.pay_fakes().await
    }

    /// After an error the server ignores every message up to the next `Sync`, and so
    /// does the client expect nothing for them.
    /// Statements whose `Parse` is skipped are not prepared after all.
    fn skip_to_sync(&mut self, server: &mut Server) {
        while let Some(owed) = self.owed.front() {
            match owed {
                Owed::Forward {
                    done: Done::Ready, ..
                } => break,
                Owed::Forward {
                    parse: Some(statement),
                    ..
                }
                | Owed::Swallow { statement } => {
                    server.prepared.remove(statement);
                }
                _ => {}
            }
            self.owed.pop_front();
        }
    }

    async fn pay_fakes(&mut self) -> anyhow::Result<()> {
        while let Some(Owed::Fake(message)) = self.owed.front() {
            let message = message.clone();
            self.send(&message).await?;
            self.owed.pop_front();
        }
        Ok(())
    }

    async fn send(&mut self, message: &Message) -> anyhow::Result<()> {
        let mut out = Vec::new();
        message.encode(&mut out);
        self.writer.write_all(&out).await?;
        Ok(())
    }
}

fn parse_message(statement: &str, query: &[u8], types: &[u8]) -> Message {
    let mut body = Vec::new();
    with_cstr(&mut body, statement.as_bytes());
    with_cstr(&mut body, query);
    body.extend_from_slice(types);
    Message::new(b'P', body)
}
