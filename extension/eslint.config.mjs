import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'build-test/', 'node_modules/', '../workbench/labextension/'] },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.json', './tsconfig.test.json'],
        tsconfigRootDir: import.meta.dirname
      }
    },
    rules: {
      // Numbers in template strings (sizes, milliseconds) read naturally.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: 'Untrusted text goes through textContent.' },
        { property: 'outerHTML', message: 'Untrusted text goes through textContent.' },
        { property: 'insertAdjacentHTML', message: 'Untrusted text goes through textContent.' }
      ]
    }
  },
  {
    files: ['test/**/*.ts'],
    // node:test registers each test when called; the runner awaits them itself.
    rules: { '@typescript-eslint/no-floating-promises': 'off' }
  }
);
