/*
 * cffi declarations mirroring libcore/include/lim.h (keep in step with it).
 * Out-of-line API mode: struct layouts and constants are checked against
 * the real header when the extension is compiled.
 */

#define LIM_VERSION_MAJOR ...
#define LIM_VERSION_MINOR ...
#define LIM_VERSION_PATCH ...

const char *lim_version(void);

/* errors */
typedef enum {
	LIM_OK = 0,
	LIM_ERROR = -1,
	LIM_ENOTFOUND = -3,
	LIM_EEXISTS = -4,
	LIM_EINVALID = -5,
	LIM_EMALFORMED = -6,
	LIM_EHASH = -7,
	LIM_ESIGNATURE = -8,
	LIM_EGAP = -9,
	LIM_EEQUIVOCATION = -10,
	LIM_ECLOCK = -11,
	LIM_ENOTSTORE = -12,
	LIM_EVERSION = -13,
	LIM_ECORRUPT = -14,
	LIM_EIO = -15,
	LIM_EFAILED = -16,
	LIM_ETXN = -17,
	LIM_ENOMEM = -18,
	LIM_EAUTH = -19,
	LIM_EPROTOCOL = -20,
	LIM_ECLOSED = -21,
	LIM_EITEROVER = -31
} lim_error_code;

int lim_error_last_code(void);
const char *lim_error_last(void);
const char *lim_error_name(int code);

/* buffers */
typedef struct {
	char *ptr;
	size_t size;
} lim_buf;

void lim_buf_dispose(lim_buf *buf);

/* limits */
#define LIM_MAX_COLLECTION_BYTES ...
#define LIM_MAX_DOC_BYTES ...
#define LIM_MAX_PATH_BYTES ...
#define LIM_MAX_PATH_DEPTH ...
#define LIM_MAX_VALUE_BYTES ...
#define LIM_MAX_OPS_PER_CHANGE ...
#define LIM_MAX_CHANGE_BYTES ...
#define LIM_MAX_JSON_BYTES ...
#define LIM_ID_BYTES 32
#define LIM_NETWORK_KEY_BYTES 32
#define LIM_HASH_BYTES 32

/* values */
typedef enum {
	LIM_NULL = 0,
	LIM_BOOL = 1,
	LIM_INT = 2,
	LIM_FLOAT = 3,
	LIM_STRING = 4,
	LIM_BYTES = 5
} lim_type;

typedef struct {
	lim_type type;
	int boolean;
	int64_t integer;
	double real;
	const char *str;
	size_t len;
} lim_value;

/* store */
typedef struct lim_db lim_db;

typedef enum {
	LIM_SYNC_NORMAL = 1,
	LIM_SYNC_FULL = 2
} lim_synchronous;

typedef int64_t (*lim_clock_fn)(void *ctx);

typedef struct {
	unsigned int version;
	int create;
	lim_synchronous synchronous;
	int64_t max_drift_ms;
	lim_clock_fn clock;
	void *clock_ctx;
	const unsigned char *network_key;
	const char *vfs;
} lim_db_options;

#define LIM_DB_OPTIONS_VERSION ...

int lim_db_options_init(lim_db_options *opts, unsigned int version);
int lim_db_open(lim_db **out, const char *path, const lim_db_options *opts);
void lim_db_free(lim_db *db);
int lim_db_replica_id(lim_db *db, unsigned char out[32]);
int lim_db_network_key(lim_db *db, unsigned char out[32]);

/* writes */
int lim_db_put_json(lim_db *db, const char *coll, const char *doc,
                    const char *json, size_t json_len);
int lim_db_set(lim_db *db, const char *coll, const char *doc,
               const char *path, const lim_value *value);
int lim_db_delete(lim_db *db, const char *coll, const char *doc, const char *path);
int lim_db_incr(lim_db *db, const char *coll, const char *doc,
                const char *path, int64_t delta);
int lim_db_set_add(lim_db *db, const char *coll, const char *doc,
                   const char *path, const lim_value *elem);
int lim_db_set_remove(lim_db *db, const char *coll, const char *doc,
                      const char *path, const lim_value *elem);
int lim_db_begin(lim_db *db);
int lim_db_commit(lim_db *db);
int lim_db_rollback(lim_db *db);

/* reads */
typedef enum {
	LIM_KIND_REGISTER = 1,
	LIM_KIND_COUNTER = 2,
	LIM_KIND_SET = 3
} lim_kind;

typedef struct lim_field lim_field;

int lim_db_get_field(lim_field **out, lim_db *db, const char *coll,
                     const char *doc, const char *path);
lim_kind lim_field_kind(const lim_field *field);
int lim_field_value(const lim_field *field, lim_value *out);
size_t lim_field_count(const lim_field *field);
int lim_field_element(const lim_field *field, size_t i, lim_value *out);
void lim_field_free(lim_field *field);

int lim_db_get_json(lim_buf *out, lim_db *db, const char *coll,
                    const char *doc, const char *path);

typedef struct lim_doc_iter lim_doc_iter;
int lim_db_docs(lim_doc_iter **out, lim_db *db, const char *coll,
                const char *prefix, const char *after);
int lim_doc_iter_next(lim_doc_iter *it, const char **key);
void lim_doc_iter_free(lim_doc_iter *it);

/* replication */
int lim_db_version_vector(lim_buf *out, lim_db *db);

typedef struct lim_change_iter lim_change_iter;
int lim_db_changes_since(lim_change_iter **out, lim_db *db,
                         const char *since, size_t since_len);
int lim_change_iter_next(lim_change_iter *it, const char **bytes, size_t *len);
void lim_change_iter_free(lim_change_iter *it);

typedef struct {
	size_t applied;
	size_t duplicates;
} lim_apply_stats;

int lim_db_apply(lim_db *db, const char *bytes, size_t len, lim_apply_stats *stats);
int lim_db_export(lim_db *db, const char *since, size_t since_len,
                  int (*write)(void *ctx, const char *bytes, size_t len), void *ctx);
int lim_db_import(lim_db *db,
                  long (*read)(void *ctx, char *buf, size_t cap), void *ctx,
                  lim_apply_stats *stats);
int lim_db_digest(lim_db *db, char out[65]);
int lim_db_verify(lim_db *db);
int lim_db_rebuild(lim_db *db);

/* change log */
typedef struct lim_log_iter lim_log_iter;

typedef struct {
	char author[65];
	uint64_t seq;
	uint64_t hlc;
	const char *bytes;
	size_t len;
} lim_change_info;

int lim_db_log(lim_log_iter **out, lim_db *db, size_t limit);
int lim_log_iter_next(lim_log_iter *it, lim_change_info *out);
void lim_log_iter_free(lim_log_iter *it);

/* sync node */
typedef struct lim_node lim_node;

typedef struct {
	unsigned int version;
	const char *listen;
	const char *const *peers;
	size_t npeers;
	const char *const *allow;
	size_t nallow;
	int max_connections;
	int idle_timeout_ms;
	int keepalive_ms;
	int reconnect_min_ms;
	int reconnect_max_ms;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
} lim_node_options;

#define LIM_NODE_OPTIONS_VERSION ...

int lim_node_options_init(lim_node_options *opts, unsigned int version);
int lim_node_start(lim_node **out, lim_db *db, const lim_node_options *opts);
void lim_node_free(lim_node *node);
int lim_node_address(lim_buf *out, lim_node *node);
int lim_node_add_peer(lim_node *node, const char *addr);
int lim_node_remove_peer(lim_node *node, const char *addr);
int lim_node_status(lim_buf *out, lim_node *node);

typedef struct {
	char author[65];
	uint64_t seq;
} lim_node_event;

int lim_node_next_event(lim_node *node, lim_node_event *out, int timeout_ms);
int lim_node_event_fd(lim_node *node);
uint64_t lim_node_events_dropped(lim_node *node);

typedef struct {
	uint64_t changes_in, changes_out;
} lim_sync_stats;

int lim_sync_once(lim_db *db, const char *addr, int timeout_ms, lim_sync_stats *stats);
int lim_remote_status(lim_buf *out, lim_db *db, const char *addr, int timeout_ms);

/* Python callbacks (the binding's own, see _build.py) */
extern "Python" int64_t _lim_py_clock(void *ctx);
extern "Python" int _lim_py_write(void *ctx, const char *bytes, size_t len);
extern "Python" long _lim_py_read(void *ctx, char *buf, size_t cap);
extern "Python" void _lim_py_log(void *ctx, const char *line);
