package smartrehab.access;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.hadoop.security.UserGroupInformation;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.catalog.HiveTableRelation;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.View;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.execution.datasources.HadoopFsRelation;
import org.apache.spark.sql.execution.datasources.LogicalRelation;
import org.apache.spark.sql.execution.datasources.v2.DataSourceV2Relation;

import scala.Function1;
import scala.runtime.BoxedUnit;

/**
 * The SQL endpoint's authorisation and statement audit, a Spark session extension
 * ({@code spark.sql.extensions=smartrehab.access.EndpointAccess}) of the Thrift server only.
 *
 * <p>A check rule sees every analysed plan before it runs. The session user is the LDAP-authenticated
 * HiveServer2 user (the server runs each statement as a proxy of that user). The user's grants come from the
 * plan file {@code spark.smartrehab.access.plan} (rendered by {@code smartrehab/access/endpoint.py} from
 * infra/access/roles.yaml and the directory; re-read when it changes): per user, the tables it may read as
 * {@code db.*} or {@code db.table}, the tables it may not (winning over a {@code db.*} grant, not over an exact
 * one), and whether it may run commands that change anything. A relation that is not granted, or a writing command of a read-only user, fails the
 * statement with an error that names the table and the user. A persistent view is checked as itself, not
 * through what it reads (view-based access). A user not in the file has no grants (deny by default).
 *
 * <p>Every statement, allowed or refused, is appended as one JSON line to the spool file
 * {@code spark.smartrehab.access.spool}; {@code smartrehab.audit.ingest_spool} moves the lines into the chained
 * audit table {@code audit.access_log}. A statement that cannot be spooled is refused.
 */
public final class EndpointAccess implements Function1<SparkSessionExtensions, BoxedUnit> {

    static final String PLAN_PROPERTY = "spark.smartrehab.access.plan";
    static final String SPOOL_PROPERTY = "spark.smartrehab.access.spool";

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        Function1<SparkSession, Function1<LogicalPlan, BoxedUnit>> builder = session -> plan -> {
            check(session.sparkContext(), plan);
            return BoxedUnit.UNIT;
        };
        extensions.injectCheckRule(builder);
        return BoxedUnit.UNIT;
    }

    // ---- the plan file ----------------------------------------------------------------------------------------
    static final class Grant {
        final List<String> read = new ArrayList<>();
        final List<String> deny = new ArrayList<>();
        boolean write;
        String role = "";
    }

    private static volatile Map<String, Grant> grants = new HashMap<>();
    private static volatile long planStamp = -1;

    private static String property(SparkContext sc, String key) {
        String v = sc.getConf().contains(key) ? sc.getConf().get(key) : System.getProperty(key);
        if (v == null || v.isEmpty()) {
            throw new SecurityException("smartrehab: " + key + " is not set: the SQL endpoint refuses every statement");
        }
        return v;
    }

    /** The plan file: lines {@code user<TAB>role<TAB>write(0|1)<TAB>read,read,...<TAB>deny,deny,...}. */
    private static synchronized Map<String, Grant> currentGrants(SparkContext sc) {
        Path path = Paths.get(property(sc, PLAN_PROPERTY));
        long stamp;
        try {
            stamp = Files.getLastModifiedTime(path).toMillis() ^ Files.size(path);
        } catch (IOException e) {
            throw new SecurityException("smartrehab: the access plan " + path + " cannot be read: " + e);
        }
        if (stamp != planStamp) {
            Map<String, Grant> next = new HashMap<>();
            try {
                for (String line : Files.readAllLines(path, StandardCharsets.UTF_8)) {
                    if (line.isEmpty() || line.startsWith("#")) {
                        continue;
                    }
                    String[] f = line.split("\t", -1);
                    if (f.length != 5) {
                        throw new SecurityException("smartrehab: bad line in " + path + ": " + line);
                    }
                    Grant g = new Grant();
                    g.role = f[1];
                    g.write = "1".equals(f[2]);
                    for (String r : f[3].split(",")) {
                        if (!r.isEmpty()) {
                            g.read.add(r.toLowerCase());
                        }
                    }
                    for (String d : f[4].split(",")) {
                        if (!d.isEmpty()) {
                            g.deny.add(d.toLowerCase());
                        }
                    }
                    next.put(f[0], g);
                }
            } catch (IOException e) {
                throw new SecurityException("smartrehab: the access plan " + path + " cannot be read: " + e);
            }
            grants = next;
            planStamp = stamp;
        }
        return grants;
    }

    static boolean matches(String pattern, String table) {
        if (pattern.endsWith(".*")) {
            return table.startsWith(pattern.substring(0, pattern.length() - 1));
        }
        return pattern.equals(table);
    }

    /** An exact grant of the table wins; then any deny; then a grant of its database. */
    static boolean mayRead(Grant g, String table) {
        if (g.read.contains(table)) {
            return true;
        }
        for (String d : g.deny) {
            if (matches(d, table)) {
                return false;
            }
        }
        for (String r : g.read) {
            if (matches(r, table)) {
                return true;
            }
        }
        return false;
    }

    // ---- the plan walk ------------------------------------------------------------------------------------------
    private static String name(TableIdentifier id) {
        String db = id.database().isDefined() ? id.database().get() : "default";
        return (db + "." + id.table()).toLowerCase();
    }

    private static String name(Identifier id) {
        String[] ns = id.namespace();
        String db = ns.length > 0 ? ns[ns.length - 1] : "default";
        return (db + "." + id.name()).toLowerCase();
    }

    /** The tables a plan reads (a view counts as itself) and whether it holds a command that changes anything. */
    static void walk(LogicalPlan node, Set<String> tables, List<String> commands, boolean[] sawLog) {
        if (node instanceof View) {
            View v = (View) node;
            if (!v.isTempView()) {
                tables.add(name(v.desc().identifier()));
                return;
            }
        } else if (node instanceof LogicalRelation) {
            LogicalRelation r = (LogicalRelation) node;
            if (r.catalogTable().isDefined()) {
                tables.add(name(r.catalogTable().get().identifier()));
            } else if (deltaLog(r)) {
                sawLog[0] = true;
            } else {
                tables.add("path:" + r.relation().toString());
            }
        } else if (node instanceof DataSourceV2Relation) {
            DataSourceV2Relation r = (DataSourceV2Relation) node;
            tables.add(r.identifier().isDefined() ? name(r.identifier().get()) : "v2:" + r.table().name());
        } else if (node instanceof HiveTableRelation) {
            tables.add(name(((HiveTableRelation) node).tableMeta().identifier()));
        }
        if (node instanceof Command ? !readOnly(node) : WRITES.matcher(node.getClass().getSimpleName()).matches()) {
            commands.add(node.nodeName());
        }
        scala.collection.Iterator<LogicalPlan> children = node.children().iterator();
        while (children.hasNext()) {
            walk(children.next(), tables, commands, sawLog);
        }
        scala.collection.Iterator<LogicalPlan> subs = node.subqueries().iterator();
        while (subs.hasNext()) {
            walk(subs.next(), tables, commands, sawLog);
        }
        scala.collection.Iterator<?> inner = node.innerChildren().iterator();
        while (inner.hasNext()) {
            Object c = inner.next();
            if (c instanceof LogicalPlan) {
                walk((LogicalPlan) c, tables, commands, sawLog);
            }
        }
    }

    /** Delta's own reads of a table's transaction log while it resolves the table (not the user's reads). */
    static boolean deltaLog(LogicalRelation r) {
        if (!(r.relation() instanceof HadoopFsRelation)) {
            return false;
        }
        scala.collection.Iterator<org.apache.hadoop.fs.Path> roots =
            ((HadoopFsRelation) r.relation()).location().rootPaths().iterator();
        boolean any = false;
        while (roots.hasNext()) {
            any = true;
            if (!roots.next().toString().contains("/_delta_log")) {
                return false;
            }
        }
        return any;
    }

    /** Plan nodes that change data whether or not they are Commands (Delta's own DML nodes among them). */
    static final java.util.regex.Pattern WRITES = java.util.regex.Pattern.compile(
        "(Delta)?(Delete|Update|Merge|Insert|Append|Overwrite|Replace|Create|Drop|Alter|Truncate|Optimize|Vacuum"
        + "|Restore|Clone|Write|AddColumns|Rename|Repair|Load|Analyze).*");

    static boolean readOnly(LogicalPlan node) {
        String n = node.getClass().getSimpleName();
        if (node instanceof org.apache.spark.sql.execution.command.CreateViewCommand) {
            // a temporary view lives in the session only; what it reads is checked like any query
            return ((org.apache.spark.sql.execution.command.CreateViewCommand) node).viewType()
                == org.apache.spark.sql.catalyst.analysis.LocalTempView$.MODULE$;
        }
        return n.startsWith("Show") || n.startsWith("Describe") || n.startsWith("Explain") || n.startsWith("Refresh")
            || n.equals("SetCommand") || n.equals("SetNamespaceCommand") || n.equals("SetCatalogAndNamespace")
            || n.equals("SetNamespace") || n.equals("ResetCommand") || n.equals("UseStatement");
    }

    static String sessionUser() {
        try {
            return UserGroupInformation.getCurrentUser().getShortUserName();
        } catch (IOException e) {
            throw new SecurityException("smartrehab: no session user: " + e);
        }
    }

    /** Spark checks a persistent view's body on its own while it resolves the view (ViewResolution); the analysis
     * context does not say so at that point, the call stack does. */
    static boolean insideViewResolution() {
        if (org.apache.spark.sql.catalyst.analysis.AnalysisContext.get().nestedViewDepth() > 0) {
            return true;
        }
        for (StackTraceElement e : Thread.currentThread().getStackTrace()) {
            if (e.getClassName().endsWith("ViewResolution$") || e.getMethodName().endsWith("resolveViews")) {
                return true;
            }
        }
        return false;
    }

    static void check(SparkContext sc, LogicalPlan plan) {
        if (insideViewResolution()) {
            return;  // the body of a persistent view, analysed while the query that names the view is: the view is checked there
        }
        String user = sessionUser();
        Set<String> tables = new LinkedHashSet<>();
        List<String> commands = new ArrayList<>();
        boolean[] sawLog = {false};
        walk(plan, tables, commands, sawLog);
        if (sawLog[0] && tables.isEmpty() && commands.isEmpty()) {
            return;  // Delta reading a table's log while resolving it: part of the statement, audited with it
        }
        Grant g = currentGrants(sc).get(user);
        String refusal = null;
        if (g == null) {
            refusal = "user " + user + " has no grants on the SQL endpoint (not in the access plan)";
        } else {
            for (String t : tables) {
                if (!mayRead(g, t)) {
                    refusal = "user " + user + " (" + g.role + ") may not read " + t;
                    break;
                }
            }
            if (refusal == null && !g.write && !commands.isEmpty()) {
                refusal = "user " + user + " (" + g.role + ") may only read: " + commands.get(0) + " refused";
            }
        }
        String id = localProperty(sc, "spark.jobGroup.id");
        if (refusal != null || id.isEmpty() || SPOOLED.add(id)) {
            spool(sc, user, g == null ? "" : g.role, tables, refusal);
        }
        if (refusal != null) {
            throw new SecurityException("smartrehab access denied: " + refusal);
        }
    }

    // ---- the audit spool ----------------------------------------------------------------------------------------
    private static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : (s == null ? "" : s).toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    /** Statement ids already spooled (one record per statement, however often its plans are analysed). */
    private static final Set<String> SPOOLED = java.util.Collections.synchronizedSet(java.util.Collections.newSetFromMap(
        new java.util.LinkedHashMap<String, Boolean>() {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
                return size() > 10000;
            }
        }));

    private static String localProperty(SparkContext sc, String key) {
        String s = sc.getLocalProperty(key);
        return s == null ? "" : s;
    }

    // synchronized: a JVM may hold one lock on a file at a time (OverlappingFileLockException); the file lock is
    // for the Python side that takes the spool over.
    private static synchronized void spool(SparkContext sc, String user, String role, Set<String> tables, String refusal) {
        String line = "{\"event_time\":" + json(Instant.now().toString())
            + ",\"actor\":" + json(user)
            + ",\"role\":" + json(role)
            + ",\"statement\":" + json(localProperty(sc, "spark.job.description"))
            + ",\"tables_read\":" + json(String.join(",", tables))
            + ",\"outcome\":" + json(refusal == null ? "success" : "denied")
            + ",\"reason\":" + json(refusal == null ? "" : refusal) + "}\n";
        Path path = Paths.get(property(sc, SPOOL_PROPERTY));
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND);
             FileLock ignored = ch.lock()) {
            ch.write(java.nio.ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8)));
            ch.force(false);
        } catch (IOException e) {
            throw new SecurityException("smartrehab: the statement cannot be audited (" + path + "): " + e);
        }
    }
}
