// Java Avro's verdict on schema pairs, for tests/java_oracle.rs.
//
// Input (the file named by the first argument): two lines per pair, the writer schema then the
// reader schema, each on one line. Output (standard output): one line per pair, in order:
// `COMPATIBLE`, `INCOMPATIBLE<TAB>type at location: message; ...`, or `ERROR<TAB>what failed`.
// The verdict is SchemaCompatibility.checkReaderWriterCompatibility(reader, writer), the call
// Confluent's Schema Registry makes (AvroSchema.isBackwardCompatible).

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.Incompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.SchemaCompatibility.SchemaPairCompatibility;

public class Oracle {
    public static void main(String[] args) throws Exception {
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        if (lines.size() % 2 != 0) {
            throw new IllegalArgumentException("odd number of lines: " + lines.size());
        }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < lines.size(); i += 2) {
            try {
                Schema writer = new Schema.Parser().parse(lines.get(i));
                Schema reader = new Schema.Parser().parse(lines.get(i + 1));
                SchemaPairCompatibility result =
                    SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
                if (result.getType() == SchemaCompatibilityType.COMPATIBLE) {
                    out.append("COMPATIBLE\n");
                    continue;
                }
                out.append("INCOMPATIBLE\t");
                for (Incompatibility problem : result.getResult().getIncompatibilities()) {
                    out.append(problem.getType()).append(" at ").append(problem.getLocation())
                        .append(": ").append(oneLine(problem.getMessage())).append("; ");
                }
                out.append('\n');
            } catch (Exception e) {
                out.append("ERROR\t").append(oneLine(e.toString())).append('\n');
            }
        }
        System.out.print(out);
        System.out.flush();
    }

    private static String oneLine(String text) {
        return text == null ? "" : text.replace('\n', ' ').replace('\r', ' ').replace('\t', ' ');
    }
}
