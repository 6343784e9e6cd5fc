// Adds (or, with --delete, removes) ACLs on the local real broker through Kafka's own Admin
// client (kafka-clients), in one JVM for a whole batch. Run by local_stack::broker as a
// single-file source program:
//   java -cp <broker classpath> Acls.java <bootstrap> [--delete] <principal>;<resource>;<pattern>;<name>;<operation> ...
// resource: TOPIC | GROUP | TRANSACTIONAL_ID | CLUSTER; pattern: LITERAL | PREFIXED;
// operation: READ | WRITE | DESCRIBE | CREATE | ALL | ... (org.apache.kafka.common.acl.AclOperation).
// Exits 0 when the broker accepted every binding (--delete: removed every one, each matching
// at least one ACL), 1 with the reason on stderr otherwise.

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Acls {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Acls <bootstrap> <principal>;<resource>;<pattern>;<name>;<operation>...");
            System.exit(2);
        }
        boolean delete = args[1].equals("--delete");
        List<AclBinding> bindings = new ArrayList<>();
        for (int i = delete ? 2 : 1; i < args.length; i++) {
            String[] f = args[i].split(";", -1);
            if (f.length != 5) {
                System.err.println("malformed ACL spec: " + args[i]);
                System.exit(2);
            }
            ResourcePattern pattern = new ResourcePattern(
                ResourceType.valueOf(f[1]), f[3], PatternType.valueOf(f[2]));
            AccessControlEntry entry = new AccessControlEntry(
                f[0], "*", AclOperation.valueOf(f[4]), AclPermissionType.ALLOW);
            bindings.add(new AclBinding(pattern, entry));
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(props)) {
            if (delete) {
                List<AclBindingFilter> filters = new ArrayList<>();
                for (AclBinding binding : bindings) {
                    filters.add(binding.toFilter());
                }
                var deleted = admin.deleteAcls(filters).values();
                for (AclBindingFilter filter : filters) {
                    if (deleted.get(filter).get(60, TimeUnit.SECONDS).values().isEmpty()) {
                        System.err.println("no ACL matches " + filter);
                        System.exit(1);
                    }
                }
            } else {
                admin.createAcls(bindings).all().get(60, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            System.err.println((delete ? "deleting" : "creating") + " ACLs failed: " + cause);
            System.exit(1);
        }
        System.out.println((delete ? "deleted " : "created ") + bindings.size() + " ACL bindings");
    }
}
