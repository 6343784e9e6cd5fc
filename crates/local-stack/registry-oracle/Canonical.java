// Java Avro's canonical text of schemas, for tests/registry_java_oracle.rs: the text Confluent's
// Schema Registry stores and identifies a schema by (AvroSchema.canonicalString() is
// Schema.toString() of the parsed schema).
//
// Input (the file named by the first argument): one schema per line. Output (standard output):
// one line per schema, in order: `OK<TAB>` and the schema's toString(), or `ERROR<TAB>what failed`.
// The jars are those of crates/avro-events-compat/oracle/pom.xml (Java Avro 1.12).

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;

import org.apache.avro.Schema;

public class Canonical {
    public static void main(String[] args) throws Exception {
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        StringBuilder out = new StringBuilder();
        for (String line : lines) {
            try {
                out.append("OK\t").append(new Schema.Parser().parse(line).toString()).append('\n');
            } catch (Exception e) {
                String text = e.toString();
                out.append("ERROR\t")
                    .append(text.replace('\n', ' ').replace('\r', ' ').replace('\t', ' '))
                    .append('\n');
            }
        }
        System.out.print(out);
        System.out.flush();
    }
}
