// Java Avro's canonical text of schemas, for tests/registry_java_oracle.rs: the text Confluent's
// Schema Registry stores and identifies a schema by (AvroSchema.canonicalString() is
// Schema.toString() of the parsed schema).
//
// Input (the file named by the first argument): one schema per line. Output (standard output):
// one line per schema, in order: `OK<TAB>` and the schema's toString(), or `ERROR<TAB>what failed`.
// A line of several schemas separated by tabs is referenced schemas, then a schema using them:
// they are parsed in order, and the answer is the last one written as Confluent's registry
// writes a schema with references (AvroSchema.canonicalString(): toString(referenced, false)).
// The jars are those of crates/avro-events-compat/oracle/pom.xml (Java Avro 1.12).

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

import org.apache.avro.Schema;

public class Canonical {
    public static void main(String[] args) throws Exception {
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        StringBuilder out = new StringBuilder();
        for (String line : lines) {
            try {
                out.append("OK\t").append(canonical(line)).append('\n');
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

    @SuppressWarnings("deprecation")
    static String canonical(String line) {
        String[] parts = line.split("\t");
        if (parts.length == 1) {
            return new Schema.Parser().parse(line).toString();
        }
        Schema.Parser parser = new Schema.Parser();
        Schema.Parser referencedParser = new Schema.Parser();
        List<Schema> referenced = new ArrayList<>();
        for (int i = 0; i < parts.length - 1; i++) {
            parser.parse(parts[i]);
            referenced.add(referencedParser.parse(parts[i]));
        }
        return parser.parse(parts[parts.length - 1]).toString(referenced, false);
    }
}
