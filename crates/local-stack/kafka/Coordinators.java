// Finds the broker coordinating a transactional id or a consumer group through Kafka's own Admin
// client (kafka-clients): FindCoordinator, then DescribeTransactions / DescribeGroups at the
// coordinator. Run by local_stack::broker as a single-file source program:
//   java -cp <broker classpath> Coordinators.java <bootstrap> transaction|group <id>
// Prints one line, "coordinator=<broker id> state=<state>", and exits 0; exits 1 with the reason
// on stderr when the cluster cannot answer (e.g. an id no producer initialised yet).

import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.TransactionDescription;

public class Coordinators {
    public static void main(String[] args) throws Exception {
        if (args.length != 3 || !(args[1].equals("transaction") || args[1].equals("group"))) {
            System.err.println("usage: Coordinators <bootstrap> transaction|group <id>");
            System.exit(2);
        }
        String id = args[2];
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(props)) {
            if (args[1].equals("transaction")) {
                TransactionDescription d = admin.describeTransactions(List.of(id))
                    .description(id).get(60, TimeUnit.SECONDS);
                System.out.println("coordinator=" + d.coordinatorId() + " state=" + d.state());
            } else {
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(id))
                    .describedGroups().get(id).get(60, TimeUnit.SECONDS);
                System.out.println("coordinator=" + d.coordinator().id() + " state=" + d.groupState());
            }
        } catch (Exception e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            System.err.println("describing " + args[1] + " " + id + " failed: " + cause);
            System.exit(1);
        }
    }
}
