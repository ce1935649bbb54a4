// Typed linting: the Pulumi rules need type information to know which values are Outputs.
import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
    { ignores: ["dist/**", "node_modules/**", "toolchain/**", ".cluster/**"] },
    {
        files: ["**/*.ts"],
        languageOptions: {
            parser: tseslint.parser,
            parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
        },
        plugins: { "@pulumi": pulumi, "@typescript-eslint": tseslint.plugin },
        rules: {
            // Tests load the program after installing mocks, with an explicit require.
            "@typescript-eslint/no-require-imports": "error",
            "@pulumi/no-output-in-template-literal": "error",
            "@pulumi/no-output-instance-in-template-literal": "error",
        },
    },
);
